"""Nine implementations of chapter 3's causal multi-head attention, timed side by side in one process.

The book's bonus notebook ch03/02_bonus_efficient-multihead-attention, as notebook 01 writes it: the wrapper of
single heads, the chapter's `MultiHeadAttention`, combined QKV weights, einsum, `scaled_dot_product_attention` with
`is_causal` and with an explicit mask, `nn.MultiheadAttention` with and without `need_weights`, and FlexAttention.
All of them get the weights of one seeded `MultiHeadAttention` (`attention_variants`), and every one's output is
checked against the chapter's before anything is timed. Then `attention_timings` times a forward pass (without
gradients) and a forward+backward pass (the sum of the output as loss) of each, the variants taking turns,
`--repeats` times after a warm-up; the table gives the medians and each one's speed relative to the chapter's
class, all measured in this process. FlexAttention also runs compiled by `torch.compile` (the compilation is part
of the warm-up, not of the times; `--no-compile` leaves that row out). On a CPU, PyTorch 2.13 has no
FlexAttention backward pass: its forward+backward cell says so.

The book's sizes are the defaults: GPT-2 small's attention (768 dimensions, 12 heads) on batch 8 of 1,024 tokens.
`--threads` sets PyTorch's CPU threads (default: PyTorch's choice, one per core); on a machine that other work keeps
busy, `--threads 1` gives steadier figures, since threads that wait for each other there cost more than they save.

    python benchmarks/attention.py [--device cpu|cuda] [--batch 8] [--context 1024] [--emb 768] [--heads 12] [--repeats 5] [--threads N]
"""
import argparse
import math
import warnings

import torch

from llm_from_scratch.attention import MultiHeadAttention, attention_timings, attention_variants
from llm_from_scratch.engine.speed import cpu_name


def main(args):
    if args.threads: torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    print(f"torch {torch.__version__}, {device}: {name}, {torch.get_num_threads()} threads; batch {args.batch}, "
          f"{args.context} tokens, d_in = d_out = {args.emb}, {args.heads} heads, float32, dropout 0, median of {args.repeats}\n")
    torch.manual_seed(123)
    mha = MultiHeadAttention(args.emb, args.emb, args.context, 0.0, num_heads=args.heads).to(device).eval()
    variants = attention_variants(mha)
    if "9 FlexAttention" in variants and not args.no_compile:
        variants["9 FlexAttention, torch.compile"] = torch.compile(variants["9 FlexAttention"])
    x = torch.randn(args.batch, args.context, args.emb, device=device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "flex_attention called without torch.compile")   # row 9 is the uncompiled one
        with torch.no_grad():   # every variant computes the chapter's function here too
            expected = mha(x)
            for variant, module in variants.items():
                diff = (module(x) - expected).abs().max().item()
                assert diff < 1e-4, f"{variant} differs from chapter 3's MultiHeadAttention by {diff:.1e}"
        timings = attention_timings(variants, x, repeats=args.repeats)
    base = timings["2 chapter 3 MultiHeadAttention"]
    print("| variant | forward (ms) | vs ch. 3 | forward+backward (ms) | vs ch. 3 |\n|---|---:|---:|---:|---:|")
    for variant, t in timings.items():
        cells = []
        for p in ("forward", "forward+backward"):
            if math.isnan(t[p]): cells += [f"not on {device.type}", ""]
            else: cells += [f"{t[p] * 1e3:.1f}", f"{base[p] / t[p]:.2f}x"]
        print(f"| {variant} | " + " | ".join(cells) + " |")
    print("\nvs ch. 3: how many times faster than the chapter's MultiHeadAttention (above 1: faster)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=1024, help="tokens per sequence (also the modules' context_length)")
    p.add_argument("--emb", type=int, default=768, help="d_in = d_out")
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (0: PyTorch's default)")
    p.add_argument("--no-compile", action="store_true", help="leave out FlexAttention compiled by torch.compile")
    main(p.parse_args())
