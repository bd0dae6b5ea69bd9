"""The engine: what runs the book's chapters beyond the lesson, one concern per module, each generated from a notebook
in nbs/engine/. The engine imports the chapters' modules; no chapter module imports the engine.

- `checkpoints` (00_checkpoints): checkpoint folders written all or nothing and checked when loaded (`save_checkpoint`, `load_model`).
- `trainer` (01_trainer): the book's loop with checkpoints, Ctrl-C and exact resume (`train`, `TrainState`, `adamw`).
- `distributed` (02_distributed): one process or many (`world_size`, `rank`), DDP and FSDP under torchrun (`init_distributed`, `distributed_loader`, `parallelize`).
- `speed` (03_speed): oneDNN linear layers where they are faster on this CPU (`use_fast_linear`), SDPA attention (`use_sdpa`),
  the output head fused with the loss (`use_fused_loss`, `lm_loss`), bfloat16 where it is fast (`bf16_verdict`),
  freed memory kept for the next step (`reuse_freed_memory`).
- `shards` (04_shards): corpora larger than memory as token shards (`prepare_shards`, `ShardDataset`).
- `tuning` (05_tuning): the book's hyperparameter search with Optuna (`tune`).
- `serve` (06_serve): `llmfs serve`, a chat page and OpenAI- and Ollama-compatible APIs.
- `cli` (07_cli): the `llmfs` command line.
- `make_data` (08_make_data): notebook 06's recipes for data made by an LLM over many entries, resumable (`make_data_file`, `llmfs make-data`).
"""
