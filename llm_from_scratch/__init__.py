"""llm-from-scratch: build a GPT-like large language model in PyTorch from the ground up, following the book
*Build a Large Language Model (From Scratch)* (S. Raschka, Manning 2024), one notebook per chapter.

Modules (each is generated from the notebook of the same number; the docs site has a page for each,
https://llm-from-scratch.github.io/llm-from-scratch/):

- `text_data` (notebook 00, chapter 2): tokenizers, the sliding-window dataset, the course's `download` helper.
- `attention` (01, chapter 3): self-attention up to the book's causal `MultiHeadAttention`.
- `gpt_model` (02, chapter 4): `GPTModel`, `generate_text_simple`, and the KV cache (`KVCache`, `generate_text_simple_cached`).
- `pretraining` (03, chapter 5): losses, `train_model_simple`, decoding, checkpoints and the `train_model` loop `llmfs` runs.
- `pretrained_weights` (04, chapter 5): OpenAI's GPT-2 weights (`load_gpt2`), and export to Hugging Face.
- `classification` (05, chapter 6): the spam data (`download_and_unzip_spam_data`, `SpamDataset`); the classifier follows.
- `training_at_scale` (07, appendices A and D): the speed recipe (`use_fast_linear`).

The command line is `llmfs` (`python -m llm_from_scratch`): `llmfs pretrain`, `llmfs generate`.
"""
__version__ = "0.0.1"
