"""llm-from-scratch: build a GPT-like large language model in PyTorch from the ground up, following the book
*Build a Large Language Model (From Scratch)* (S. Raschka, Manning 2024), one notebook per chapter.

The book's chapters (each module is generated from the notebook of the same number; the docs site has a page for each,
https://llm-from-scratch.github.io/llm-from-scratch/):

- `text_data` (notebook 00, chapter 2): tokenizers, the sliding-window dataset, the course's `download` helper.
- `attention` (01, chapter 3): self-attention up to the book's causal `MultiHeadAttention`.
- `gpt_model` (02, chapter 4): `GPTModel`, `generate_text_simple`, and the KV cache (`KVCache`, `generate_text_simple_cached`).
- `pretraining` (03, chapter 5): losses, `train_model_simple`, decoding (`generate`), saving and loading weights.
- `pretrained_weights` (04, chapter 5): OpenAI's GPT-2 weights (`load_gpt2`), and export to Hugging Face.
- `classification` (05, chapter 6): the spam classifier (`SpamDataset`, `prepare_classifier`, `train_classifier_simple`).
- `instruction_tuning` (06, chapter 7): instruction finetuning (`format_input`, `custom_collate_fn`), the judge LLM, and data made by an LLM.
- `training_at_scale` (07, appendices A and D): PyTorch essentials, warmup, cosine decay and clipping, memory arithmetic.
- `preference_tuning` (08, chapter 7's bonus): DPO (`compute_dpo_loss`, `train_model_dpo_simple`).
- `lora` (09, appendix E): `LoRALayer`, `LinearWithLoRA`, `replace_linear_with_lora`, adapters on their own.
- `modern_llms` (10, chapter 5's bonus): Llama 3.2, Qwen3 and Gemma 3 from shared pieces, their weights and tokenizers.

The engine (`llm_from_scratch.engine`, notebooks in nbs/engine/) runs them beyond the lesson: `checkpoints`, `trainer`,
`distributed`, `speed`, `shards`, `tuning`, `serve`, `make_data` and `cli`, the command line `llmfs` (`python -m llm_from_scratch`).
"""
__version__ = "0.0.1"
