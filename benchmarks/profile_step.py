"""Where one training step of GPT-2 124M goes, op by op, as `llmfs pretrain --config 124M` builds the model.

The model, optimizer and precision are the command's (engine/07_cli): chapter 4's GPTModel with dropout 0.1, fused
layer norm and GELU, oneDNN linear layers where this machine's kept measurement says so (`fast_linear_choice`), the
output head fused with its cross-entropy (`use_fused_loss`; `--plain-loss` for chapter 5's logits and
`F.cross_entropy`, to compare), fused AdamW, and bfloat16 autocast where the processor multiplies bfloat16 fast (`bf16_is_fast`, measured once per machine; `--precision` forces
either). `torch.profiler` records `--steps` steps after `--warmup` (the engine's `accumulated_step`: forward,
cross-entropy, backward, optimizer); the table lists the ops with the most self time, their share of all ops' self
time and the calls per step. `--sdpa` swaps in fused attention first (`use_sdpa`), to compare.

    python benchmarks/profile_step.py [--precision auto|fp32|bf16] [--steps 3] [--batch 2] [--context 256] [--sdpa] [--plain-loss] [--top 15]
"""
import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch
from torch.profiler import ProfilerActivity, profile

from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel, flops_per_token
from llm_from_scratch.engine.speed import FastLinear, bf16_is_fast, cpu_name, use_fast_linear, use_fused_layers, use_fused_loss, use_sdpa
from llm_from_scratch.engine.trainer import accumulated_step, adamw, new_train_state


def main(args):
    device = torch.device(args.device)
    precision = args.precision if args.precision != "auto" else ("bf16" if bf16_is_fast(device) else "fp32")
    cfg = {**GPT_CONFIG_124M, "context_length": args.context}
    torch.manual_seed(123)
    model = use_fused_layers(GPTModel(cfg).to(device))
    if device.type == "cpu": use_fast_linear(model)
    if args.sdpa: use_sdpa(model)
    fast = type(model.out_head) is FastLinear
    if not args.plain_loss: use_fused_loss(model)
    optimizer = adamw(model, lr=4e-4)
    amp = torch.bfloat16 if precision == "bf16" else None
    data = torch.randint(0, 50257, (args.batch, args.context + 1), generator=torch.Generator().manual_seed(0))
    x, y = data[:, :-1].to(device), data[:, 1:].to(device)
    state = new_train_state()
    step = lambda: accumulated_step(model, optimizer, [(x, y)], device, state, amp_dtype=amp).item()
    for _ in range(args.warmup): step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(args.steps): step()
    seconds = (time.perf_counter() - start) / args.steps
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    tokens = args.batch * args.context
    flops = flops_per_token(GPT_CONFIG_124M, args.context)["training GFLOPs/token"] * 1e9 * tokens
    print(f"torch {torch.__version__}, {device}: {name}, {torch.get_num_threads()} threads")
    print(f"GPT-2 124M as llmfs pretrain builds it: dropout {cfg['drop_rate']}, fused layer norm and GELU, "
          f"{'oneDNN' if fast else 'PyTorch'} linear layers, {'plain' if args.plain_loss else 'fused'} loss, fused AdamW, {precision}"
          f"{', SDPA' if args.sdpa else ''}; batch {args.batch} x {args.context}")
    print(f"{seconds:.3f} s per step under the profiler = {tokens / seconds:,.0f} tokens/s = {flops / seconds / 1e9:,.0f} GFLOP/s "
          f"(6N plus attention per token)\n")
    self_time, calls = defaultdict(float), defaultdict(int)
    use_cuda = device.type == "cuda"
    for e in prof.key_averages():
        self_time[e.key] += (e.self_device_time_total if use_cuda else e.self_cpu_time_total)
        calls[e.key] += e.count
    total = sum(self_time.values())
    print("| op | self time per step (ms) | share | calls per step |\n|---|---:|---:|---:|")
    for op, t in sorted(self_time.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"| {op} | {t / 1e3 / args.steps:,.1f} | {t / total:.1%} | {calls[op] / args.steps:,.0f} |")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--sdpa", action="store_true", help="fused attention (use_sdpa) first")
    p.add_argument("--plain-loss", action="store_true", help="chapter 5's logits and F.cross_entropy instead of the fused loss")
    p.add_argument("--top", type=int, default=15)
    main(p.parse_args())
