"""LoRA against full finetuning: one training step of GPT-2 124M (random weights), side by side in one process.

Next-token training at batch 2 x 256 tokens, AdamW, dropout 0. Full finetuning trains all 163M weights (GPT-2's
untied output head included); LoRA (rank 16, alpha 16, every linear layer, notebook 09) trains the adapters only.
Times: median of `--steps` steps after a warm-up, the two taking turns. Peak memory: each trains `--steps` steps again
in a fresh process (CPU: the peak resident memory while training, and its growth over the model alone; CUDA: peak
allocated), so that one's leftovers do not count against the other.

    python benchmarks/lora.py [--device cpu|cuda] [--steps 5]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch

from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel
from llm_from_scratch.lora import replace_linear_with_lora
from llm_from_scratch.pretraining import calc_loss_batch
from llm_from_scratch.engine.speed import cpu_name

WAYS = ("full finetuning", "LoRA r=16")


def build(way, device):
    torch.manual_seed(123)
    model = GPTModel({**GPT_CONFIG_124M, "context_length": 256, "drop_rate": 0.0})
    if way.startswith("LoRA"):
        for p in model.parameters(): p.requires_grad = False
        replace_linear_with_lora(model, rank=16, alpha=16)
    model.to(device).train()
    return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.1)


def step(model, optimizer, x, y, device):
    optimizer.zero_grad(set_to_none=True)
    loss = calc_loss_batch(x, y, model, device)
    loss.backward()
    optimizer.step()
    if device.type == "cuda": torch.cuda.synchronize()


def status_mib(field):
    with open("/proc/self/status") as f: return next(int(l.split()[1]) / 1024 for l in f if l.startswith(field + ":"))


def memory_child(args):
    device = torch.device(args.device)
    model, optimizer = build(args.memory_of, device)
    x = torch.randint(0, 50257, (2, 257))
    before = status_mib("VmRSS")
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as f: f.write("5")
    for _ in range(args.steps): step(model, optimizer, x[:, :-1].to(device), x[:, 1:].to(device), device)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else status_mib("VmHWM")
    print(json.dumps({"peak": peak, "growth": peak - before if device.type == "cpu" else None}))


def main(args):
    device = torch.device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    print(f"torch {torch.__version__}, {device}: {name}, {torch.get_num_threads()} threads")
    models = {way: build(way, device) for way in WAYS}
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 50257, (2, 257), generator=g)
    x, y = data[:, :-1].to(device), data[:, 1:].to(device)
    for model, opt in models.values(): step(model, opt, x, y, device)   # warm-up
    times = {way: [] for way in WAYS}
    for _ in range(args.steps):
        for way, (model, opt) in models.items():
            t = time.perf_counter(); step(model, opt, x, y, device); times[way].append(time.perf_counter() - t)
    mem = {}
    for way in WAYS:
        out = subprocess.run([sys.executable, __file__, "--memory-of", way, "--device", args.device, "--steps", str(args.steps)],
                             capture_output=True, text=True, check=True)
        mem[way] = json.loads(out.stdout.strip().splitlines()[-1])
    ref = statistics.median(times[WAYS[0]])
    print(f"\nOne training step, batch 2 x 256 tokens (median of {args.steps})")
    print(f"{'way':<18} {'trainable':>13} {'s/step':>8} {'vs full':>8} {'peak MiB':>9} {'growth MiB':>11}")
    for way, (model, _) in models.items():
        t = statistics.median(times[way])
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        growth = f"{mem[way]['growth']:>11,.0f}" if mem[way]["growth"] is not None else f"{'-':>11}"
        print(f"{way:<18} {n:>13,} {t:>8.3f} {ref / t:>7.2f}x {mem[way]['peak']:>9,.0f} {growth}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--steps", type=int, default=5, help="timed steps per way")
    p.add_argument("--memory-of", choices=WAYS, help=argparse.SUPPRESS)
    a = p.parse_args()
    memory_child(a) if a.memory_of else main(a)
