"""The engine: what runs the book's chapters beyond the lesson, one concern per module, each generated from a notebook
in nbs/engine/. The engine imports the chapters' modules; no chapter module imports the engine.

- `speed` (00_speed): oneDNN linear layers where they are faster on this CPU (`use_fast_linear`), SDPA attention (`use_sdpa`).
- `distributed` (01_distributed): DDP and FSDP under torchrun (`init_distributed`, `distributed_loader`, `parallelize`).
- `shards` (02_shards): corpora larger than memory as token shards (`prepare_shards`, `ShardDataset`).
- `tuning` (03_tuning): the book's hyperparameter search with Optuna (`tune`).
- `serve` (04_serve): `llmfs serve`, a chat page and OpenAI- and Ollama-compatible APIs.
- `cli` (05_cli): the `llmfs` command line.
"""
