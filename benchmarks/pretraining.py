"""Pretraining speed: the book's setup (GPT-2 124M, context 256, batch 2, AdamW 4e-4, dropout 0.1, The Verdict),
our GPTModel against transformers' GPT2LMHeadModel of the same config, side by side in one process.

Three models: the book's GPTModel (`nn.Linear`), the same as `llmfs pretrain` runs it (`use_fast_linear`, notebook
07: oneDNN linear layers where measured faster on this CPU) and transformers' GPT2LMHeadModel. Each trains for `--steps` steps (one epoch of The Verdict is 9 steps) after one warm-up step, all runs taking
turns step by step so that they see the same machine load. Two optimizers: torch's default AdamW (the book's) and
fused AdamW (one pass over the weights; what `llmfs pretrain` uses). Prints the median seconds per step, tokens per
second and the seconds one epoch takes at that rate.

    python benchmarks/pretraining.py [--steps 9] [--device cpu]
"""
import argparse
import re
import statistics
import sys
import time
from pathlib import Path

# benchmarks/tokenizers.py would shadow the `tokenizers` package that transformers imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch

from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel
from llm_from_scratch.pretraining import calc_loss_batch, get_device
from llm_from_scratch.text_data import create_dataloader_v1, download
from llm_from_scratch.engine.speed import cpu_name, use_fast_linear, use_fused_layers


class HFLogits(torch.nn.Module):
    "transformers' GPT2LMHeadModel, returning plain logits like GPTModel."
    def __init__(self, cfg):
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel
        p = cfg["drop_rate"]
        self.model = GPT2LMHeadModel(GPT2Config(vocab_size=cfg["vocab_size"], n_positions=cfg["context_length"],
            n_embd=cfg["emb_dim"], n_layer=cfg["n_layers"], n_head=cfg["n_heads"], resid_pdrop=p, embd_pdrop=p, attn_pdrop=p))
    def forward(self, idx): return self.model(idx).logits


def main(args):
    device = get_device(args.device)
    cfg = {**GPT_CONFIG_124M, "context_length": 256}
    text = download("the-verdict.txt").read_text(encoding="utf-8")
    train_text = text[: int(0.9 * len(text))]
    torch.manual_seed(123)
    loader = create_dataloader_v1(train_text, batch_size=2, max_length=256, stride=256, drop_last=True, shuffle=True)
    runs = {}
    for fused in (False, True):
        torch.manual_seed(123)
        models = {"book GPTModel": GPTModel(cfg), "llmfs GPTModel": GPTModel(cfg), "transformers GPT2LMHeadModel": HFLogits(cfg)}
        models["llmfs GPTModel"].load_state_dict(models["book GPTModel"].state_dict())
        use_fused_layers(models["llmfs GPTModel"])   # as llmfs runs it: fused layer norm and GELU, oneDNN linear layers on a CPU
        if device.type == "cpu": use_fast_linear(models["llmfs GPTModel"])
        for name, m in models.items():
            m.to(device).train()
            runs[f"{name}, {'fused' if fused else 'default'} AdamW"] = (m, torch.optim.AdamW(m.parameters(), lr=4e-4, weight_decay=0.1, fused=fused))

    def step(model, opt, x, y):
        opt.zero_grad()
        loss = calc_loss_batch(x, y, model, device)
        loss.backward()
        opt.step()
        if device.type == "cuda": torch.cuda.synchronize()
        return loss.item()

    batches = [b for _ in range(args.steps // len(loader) + 2) for b in loader][: args.steps + 1]
    times = {name: [] for name in runs}
    for i, (x, y) in enumerate(batches):
        for name, (m, opt) in runs.items():
            t = time.perf_counter()
            step(m, opt, x, y)
            if i > 0: times[name].append(time.perf_counter() - t)  # step 0 is the warm-up
    n_params = {name: sum(p.numel() for p in m.parameters()) for name, (m, _) in runs.items()}
    tokens = batches[0][0].numel()
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    print(f"torch {torch.__version__} on {device} ({name}), {torch.get_num_threads()} threads; {args.steps} timed steps of "
          f"{tokens} tokens after a warm-up; an epoch of The Verdict is {len(loader)} steps\n")
    print(f"{'model, optimizer':<50} {'params':>8} {'s/step':>7} {'tokens/s':>9} {'s/epoch':>8} {'vs transformers, same optimizer':>32}")
    for name, ts in times.items():
        m = statistics.median(ts)
        ref = statistics.median(times[re.sub(r"^(book|llmfs) GPTModel", "transformers GPT2LMHeadModel", name)])
        print(f"{name:<50} {n_params[name] / 1e6:>7.1f}M {m:>7.3f} {tokens / m:>9.0f} {m * len(loader):>8.1f} {ref / m:>31.2f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=9, help="timed training steps per model (default: 9, one epoch)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    main(p.parse_args())
