"""The speed recipe (the book's bonus "PyTorch performance tips for faster LLM training"), one switch at a time.

GPT-2 124M (random weights), AdamW, the book's chapter-5 shape by default on a CPU (batch 2 x 256 tokens) and the
bonus's on a GPU (batch 8 x 1024). Each row adds one switch to the rows above it:

  baseline      the book's GPTModel and torch.optim.AdamW, float32
  tf32          TF32 matrix products (GPUs from Ampere on; nothing to switch on a CPU)
  fused AdamW   one kernel updates all the weights
  fused layers  chapter 4's layer norm and GELU as PyTorch's fused kernels (`use_fused_layers`)
  fused loss    the output head and the cross-entropy a chunk of tokens at a time, every gradient in the forward
                pass (`use_fused_loss`): no logits of the whole batch, no zero-filled gradient of them
  oneDNN linear the fast CPU linear layers of nbs/engine/03_speed (`use_fast_linear`; CPUs only)
  bf16 autocast the forward pass in bfloat16 (GPUs, and CPUs with AVX512-BF16 or AMX)
  SDPA          attention in one fused kernel (`use_sdpa`; FlashAttention on GPUs)
  compile       torch.compile
  vocab 50304   the vocabulary padded to a multiple of 128
  batch x4      four times the batch (the bonus's last step)

and, measured in the same process, one row more that adds nothing to the others but builds the model as
`llmfs pretrain --config 124M` does (engine/07_cli): dropout 0.1 (the config's), fused layer norm and GELU, oneDNN
linear layers only where this machine's kept measurement says so (`fast_linear_choice`), the fused loss, fused AdamW, and bf16
autocast only where the processor multiplies bf16 fast (`bf16_is_fast`: its flags, then one product timed once per
machine; the command's `--precision auto`); at the batch above.

For each: tokens per second (median of `--steps` steps after `--warmup` steps), the ratios to the baseline and to the
row above, peak memory (CPU: the process's peak resident memory during those steps, which includes what earlier rows
left allocated; CUDA: peak allocated) and the model FLOPs utilisation:
training FLOPs per token (notebook 02's `flops_per_token`: 6N plus attention) times tokens per second, over the
device's peak for the precision the row uses, named in the header: the data sheet's for an H100/H200 or A100 (989
TFLOP/s in bf16 on an H100), otherwise measured here with a large matrix product in float32 and in bfloat16. A short run of each of fp32 and bf16 from the same weights
checks that their losses agree (`--check-steps`).

    python benchmarks/training_speed.py [--device cpu|cuda] [--steps 5] [--warmup 2] [--batch N] [--context N]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch

from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel, flops_per_token
from llm_from_scratch.engine.trainer import accumulated_step, new_train_state
from llm_from_scratch.engine.speed import bf16_is_fast, cpu_name, use_fast_linear, use_fused_layers, use_fused_loss, use_sdpa
from llm_from_scratch.engine.trainer import adamw

NAMED_PEAKS = {"H100": {"bf16": 989e12, "tf32": 494.5e12, "fp32": 67e12}, "H200": {"bf16": 989e12, "tf32": 494.5e12, "fp32": 67e12},
               "A100": {"bf16": 312e12, "tf32": 156e12, "fp32": 19.5e12}}  # dense tensor-core peaks from the data sheets
STEPS = ["baseline", "tf32", "fused AdamW", "fused layers", "fused loss", "oneDNN linear", "bf16 autocast", "SDPA", "compile", "vocab 50304", "batch x4"]
COMMAND = "llmfs pretrain"   # the last row: the command's own model and options, not one more switch


def rss_peak_reset():
    with open("/proc/self/clear_refs", "w") as f: f.write("5")


def rss_peak_mib():
    with open("/proc/self/status") as f: return next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM:"))


def matmul_peak(device, dtype, n=4096, repeats=5):
    "FLOP/s of a large square matrix product in `dtype` on `device` (the best of `repeats`)."
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(repeats):
        if device.type == "cuda": torch.cuda.synchronize()
        t = time.perf_counter(); a @ b
        if device.type == "cuda": torch.cuda.synchronize()
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    return best


def build_command(device, base_state, args):
    "The model, optimizer and options that `llmfs pretrain --config 124M` trains with (its defaults)."
    cfg = {**GPT_CONFIG_124M, "context_length": args.context}   # dropout 0.1, as the command
    torch.manual_seed(123)
    model = GPTModel(cfg)
    model.load_state_dict(base_state)
    model = use_fused_layers(model.to(device))
    if device.type == "cpu": use_fast_linear(model)   # this machine's kept choice
    use_fused_loss(model)
    amp = torch.bfloat16 if bf16_is_fast(device) else None
    return model, adamw(model, lr=4e-4, weight_decay=0.1), amp, args.batch, cfg


def build(step, device, base_state, args):
    "The model, optimizer and options of the recipe up to and including `step`."
    if step == COMMAND: return build_command(device, base_state, args)
    on = set(STEPS[:STEPS.index(step) + 1])
    vocab = 50304 if "vocab 50304" in on else 50257
    cfg = {**GPT_CONFIG_124M, "context_length": args.context, "drop_rate": 0.0, "vocab_size": vocab}
    torch.manual_seed(123)
    model = GPTModel(cfg)
    state = dict(base_state)
    if vocab != 50257:  # the same model, with 47 rows that no token ever uses
        for k in ("tok_emb.weight", "out_head.weight"):
            state[k] = torch.cat([state[k], torch.zeros(vocab - 50257, state[k].shape[1])])
    model.load_state_dict(state)
    model.to(device)
    if device.type == "cuda": torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = "tf32" in on
    if "fused layers" in on: use_fused_layers(model)
    if "oneDNN linear" in on and device.type == "cpu": use_fast_linear(model, force=True)
    if "fused loss" in on: use_fused_loss(model)
    if "SDPA" in on: use_sdpa(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1, fused="fused AdamW" in on or None)
    if "compile" in on: model = torch.compile(model)
    amp = torch.bfloat16 if "bf16 autocast" in on else None
    batch = args.batch * (4 if "batch x4" in on else 1)
    return model, optimizer, amp, batch, cfg


def main(args):
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", device.index or 0)  # "cuda" alone names no index, which set_device needs
        torch.cuda.set_device(device)  # cuda:N: synchronize and the name follow it
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    named = next((v for k, v in NAMED_PEAKS.items() if k in name), None) if device.type == "cuda" else None
    if named: peaks, source = named, f"{name}'s data-sheet peaks"
    else:
        if device.type == "cuda": torch.backends.cuda.matmul.allow_tf32 = False
        peaks = {"fp32": matmul_peak(device, torch.float32), "bf16": matmul_peak(device, torch.bfloat16)}
        peaks["tf32"] = peaks["fp32"]
        source = "measured here with 4096^3 products"
    print(f"torch {torch.__version__}, {device}: {name}, {torch.get_num_threads()} threads")
    print(f"GPT-2 124M, batch {args.batch} x {args.context} tokens, AdamW; peak ({source}): "
          f"{peaks['fp32'] / 1e9:,.0f} GFLOP/s float32, {peaks['bf16'] / 1e9:,.0f} GFLOP/s bfloat16\n")
    torch.manual_seed(123)
    base_state = GPTModel({**GPT_CONFIG_124M, "context_length": args.context, "drop_rate": 0.0}).state_dict()
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 50257, (args.batch * 4, args.context + 1), generator=g)
    flops = flops_per_token({**GPT_CONFIG_124M}, args.context)["training GFLOPs/token"] * 1e9
    rows, ref = [], None
    for step in STEPS + [COMMAND]:
        if step == "tf32" and device.type != "cuda": rows.append((step, None)); continue
        if step == "oneDNN linear" and device.type != "cpu": rows.append((step, None)); continue
        model, optimizer, amp, batch, cfg = build(step, device, base_state, args)
        x, y = data[:batch, :-1].to(device), data[:batch, 1:].to(device)
        state, times = new_train_state(), []
        for i in range(args.warmup + args.steps):
            if i == args.warmup:
                if device.type == "cuda": torch.cuda.reset_peak_memory_stats()
                else: rss_peak_reset()
            if device.type == "cuda": torch.cuda.synchronize()
            t = time.perf_counter()
            accumulated_step(model, optimizer, [(x, y)], device, state, amp_dtype=amp)
            if device.type == "cuda": torch.cuda.synchronize()
            if i >= args.warmup: times.append(time.perf_counter() - t)
        mem = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else rss_peak_mib()
        tok_s = batch * args.context / statistics.median(times)
        ref = ref or tok_s
        which = "bf16" if amp is not None else "tf32" if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32 else "fp32"
        rows.append((step, (tok_s, tok_s / ref, mem, flops * tok_s / peaks[which], which)))
        del model, optimizer
    print(f"{'cumulative step':<16} {'tokens/s':>9} {'vs baseline':>12} {'vs previous':>12} {'peak MiB':>9} {'MFU':>7} {'peak used':>10}")
    previous = None
    for step, r in rows:
        if r is None: print(f"{step:<16} {'(not on this device)':>30}"); continue
        tok_s, ratio, mem, mfu, which = r
        vs = "" if step == COMMAND else f"{tok_s / (previous or tok_s):>11.2f}x"   # the command's row is no step of the recipe
        print(f"{step:<16} {tok_s:>9,.0f} {ratio:>11.2f}x {vs:>12} {mem:>9,.0f} {mfu:>6.1%} {which:>10}")
        previous = tok_s

    # the losses of fp32 and bf16 training agree
    if device.type == "cuda": torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # true fp32
    losses = {}
    for label, amp in (("fp32", None), ("bf16", torch.bfloat16)):
        torch.manual_seed(123)
        model = GPTModel({**GPT_CONFIG_124M, "context_length": args.context, "drop_rate": 0.0}).to(device)
        model.load_state_dict(base_state)
        optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
        state = new_train_state()
        losses[label] = [accumulated_step(model, optimizer, [(data[i % 4 * args.batch:(i % 4 + 1) * args.batch, :-1].to(device),
                                                               data[i % 4 * args.batch:(i % 4 + 1) * args.batch, 1:].to(device))],
                                          device, state, amp_dtype=amp).item() for i in range(args.check_steps)]
    worst = max(abs(a - b) for a, b in zip(losses["fp32"], losses["bf16"]))
    print(f"\nLosses over {args.check_steps} steps from the same weights (4 batches in turn), fp32 vs bf16 autocast: "
          f"{' '.join(f'{a:.3f}/{b:.3f}' for a, b in zip(losses['fp32'], losses['bf16']))}; largest difference {worst:.3f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--steps", type=int, default=5, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compile happens here)")
    p.add_argument("--batch", type=int, help="sequences per batch (default: 2 on a CPU, 8 on a GPU)")
    p.add_argument("--context", type=int, help="tokens per sequence (default: 256 on a CPU, 1024 on a GPU)")
    p.add_argument("--check-steps", type=int, default=8, help="steps of the fp32/bf16 loss comparison")
    a = p.parse_args()
    cuda = a.device.startswith("cuda")
    a.batch = a.batch or (8 if cuda else 2)
    a.context = a.context or (1024 if cuda else 256)
    main(a)
