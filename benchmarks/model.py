"""GPTModel against transformers' GPT2LMHeadModel, side by side in one process, 124M config, random weights.

Three models with the same weights: the book's GPTModel as chapter 4 builds it (`nn.Linear`, PyTorch's default CPU
matrix library), the same model as `llmfs` runs it (nbs/engine/03_speed: fused layer norm and GELU, SDPA in the
attention where it is exact (no dropout, as here), oneDNN linear layers where measured faster on this CPU, and the
output head fused with the loss, `use_fused_loss`, trained through `lm_loss`), and `transformers`' GPT2LMHeadModel.

1. One training step (forward, cross-entropy, backward) at batch 2 x 256 tokens, dropout 0 in all, in float32 (or
   under bfloat16 autocast with `--bf16`):
   median of `--steps` steps after a warm-up, the models taking turns. The process keeps freed memory for reuse, as
   `llmfs` does (`reuse_freed_memory`; `--glibc-defaults` leaves glibc's settings): with glibc's defaults every step
   maps its large tensors afresh, and a model that allocates less (the fused loss holds no logit matrix) gains from
   the machine's page-fault cost of the moment, not from its arithmetic (on an Intel Xeon of family 6, model 207:
   llmfs over transformers 1.08-1.43x in three runs with the defaults, 1.02x with freed memory kept).
   Each model's arithmetic rate (the step's training FLOPs, `flops_per_token`, over its time) is printed against the
   peak of a 4096 x 4096 product in the same precision, measured in the same process (before and after the steps, the
   higher), and two ceilings: a step at that peak, and a step that is nothing but its own matrix products (each
   product of the linear layers and the head, forward and both backward ones, timed at its own shape in the same
   process, summed, with PyTorch's own products, `F.linear`): no model built on them can be further ahead of
   transformers' step than that (a model that `use_fast_linear` swaps to oneDNN's products, on a CPU where they are
   faster, can be).
2. Greedy generation of 200 new tokens from a 10-token prompt: `generate_text_simple` (the book's loop, no cache),
   `generate_text_simple_cached` (KV cache) for both of our models and for the llmfs one with bfloat16 weights (what
   `generate`, `chat` and `serve` load where this CPU multiplies bfloat16 fast), and `GPT2LMHeadModel.generate(use_cache=True)`:
   median of `--gen-repeats` runs.
3. The memory-bandwidth limit of batch-1 generation: a cached step reads every weight once (all but the embedding
   tables, of which it reads one row), so tokens/s can be at most (read bandwidth) / (weight bytes). The read
   bandwidth is measured here, as the speed of summing a 1 GiB tensor, in every round of the generators (the median
   of those rounds: a neighbour's load moves it by 10% or more between runs); each cached generator's share of the
   limit is printed, the bfloat16 one's against its own limit (half the bytes).

    python benchmarks/model.py [--device cpu|cuda] [--steps 5] [--gen-repeats 5] [--new-tokens 200] [--glibc-defaults] [--bf16] [--no-generation]
"""
import argparse
import copy
import importlib.util
import statistics
import sys
import time
from pathlib import Path

# benchmarks/tokenizers.py would shadow the `tokenizers` package that transformers imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch
import torch.nn.functional as F

from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel, flops_per_token, generate_text_simple, generate_text_simple_cached
from llm_from_scratch.engine.speed import (FastLinear, bf16_verdict, cpu_name, fast_linear_speedup, lm_loss, reuse_freed_memory, use_fast_linear,
                                          use_fused_layers, use_fused_loss, use_sdpa_where_exact)


def hf_model(cfg, device):
    from transformers import GPT2Config, GPT2LMHeadModel
    config = GPT2Config(vocab_size=cfg["vocab_size"], n_positions=cfg["context_length"], n_embd=cfg["emb_dim"],
                        n_layer=cfg["n_layers"], n_head=cfg["n_heads"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(config).to(device)


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def timed(fn, device):
    sync(device); t = time.perf_counter(); out = fn(); sync(device)
    return time.perf_counter() - t, out


def autocast_bf16(loss_of, model, inputs, targets, device):
    "`loss_of(model, inputs, targets)` under bfloat16 autocast."
    with torch.autocast(device.type, dtype=torch.bfloat16): return loss_of(model, inputs, targets)


def train_step(model, inputs, targets, loss_of):
    model.zero_grad(set_to_none=True)
    loss = loss_of(model, inputs, targets)
    loss.backward()
    return loss.item()


def read_bandwidth(device, gib:float=1.0, repeats:int=7) -> float:
    "Bytes per second that `device` reads, summing a `gib`-GiB float32 tensor (median of `repeats`, after a warm-up)."
    x = torch.ones(int(gib * 2**30) // 4, device=device)
    x.sum()
    seconds = statistics.median(timed(lambda: x.sum(), device)[0] for _ in range(repeats))
    return x.numel() * 4 / seconds


def sibling(name:str):
    "The module `name` of this folder, imported by its path (the folder is off sys.path: its tokenizers.py would shadow the package)."
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


matmul_peak = sibling("training_speed").matmul_peak   # FLOP/s of a 4096 x 4096 product, as training_speed.py measures its peaks


def products_seconds(cfg:dict, tokens:int, device, dtype=torch.float32, repeats:int=5) -> float:
    "Seconds of a training step's linear-layer and head products alone: forward, input and weight gradients, each shape timed."
    d, seconds = cfg["emb_dim"], 0.0
    for (out_f, in_f), count in {(d, d): 4 * cfg["n_layers"], (4 * d, d): cfg["n_layers"], (d, 4 * d): cfg["n_layers"],
                                 (cfg["vocab_size"], d): 1}.items():   # Q, K, V, out_proj; the feed-forward pair; the head
        w, x, dy = (torch.randn(*shape, device=device, dtype=dtype) for shape in ((out_f, in_f), (tokens, in_f), (tokens, out_f)))
        for product in (lambda: F.linear(x, w), lambda: dy @ w, lambda: dy.t() @ x):
            product()
            seconds += count * statistics.median(timed(product, device)[0] for _ in range(repeats))
    return seconds


def weight_bytes_per_token(model) -> int:
    "Bytes of the weights one cached generation step reads: every parameter but the embedding tables (one row of each)."
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    return sum(p.numel() * p.element_size() for p in model.parameters() if id(p) not in embeddings)


def main(args):
    device = torch.device(args.device)
    kept = not args.glibc_defaults and reuse_freed_memory()   # for all three models: a setting of the process
    cfg = {**GPT_CONFIG_124M, "drop_rate": 0.0}
    torch.manual_seed(123)
    book = GPTModel(cfg).to(device)
    llmfs = GPTModel(cfg).to(device)
    llmfs.load_state_dict(book.state_dict())
    use_fused_layers(llmfs)   # what llmfs does: fused layer norm and GELU ...
    use_sdpa_where_exact(llmfs)   # ... SDPA, exact without dropout ...
    if device.type == "cpu": use_fast_linear(llmfs)   # ... and oneDNN linear layers on a CPU
    fast = type(llmfs.out_head) is FastLinear
    use_fused_loss(llmfs)   # ... and the output head fused with its loss
    theirs = hf_model(cfg, device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    print(f"torch {torch.__version__}, {device}: {name}, {torch.get_num_threads()} threads; freed memory "
          f"{'kept for reuse (reuse_freed_memory)' if kept else 'given back (glibc defaults, or not glibc)'}")
    if device.type == "cpu":
        print(f"oneDNN vs MKL on a 512x768x3072 product here: {fast_linear_speedup():.2f}x, so use_fast_linear "
              f"{'swapped the layers' if fast else 'left the model unchanged'}\n")

    # 1. training step
    for m in (book, llmfs, theirs): m.train()
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, cfg["vocab_size"], (2, args.seq_len + 1), generator=g).to(device)
    inputs, targets = data[:, :-1], data[:, 1:]
    tokens = 2 * args.seq_len
    plain = lambda m, x, y: F.cross_entropy(m(x).flatten(0, 1), y.flatten())
    runs = {"book GPTModel (nn.Linear)": (book, plain), "llmfs GPTModel (as llmfs runs it)": (llmfs, lambda m, x, y: lm_loss(x, y, m, device)),
            "transformers GPT2LMHeadModel": (theirs, lambda m, x, y: F.cross_entropy(m(x).logits.flatten(0, 1), y.flatten()))}
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    if args.bf16:   # every model's step under bfloat16 autocast, as llmfs's --precision bf16 runs it
        runs = {name: (model, lambda m, x, y, loss_of=loss_of: autocast_bf16(loss_of, m, x, y, device)) for name, (model, loss_of) in runs.items()}
    losses = {name: train_step(model, inputs, targets, loss_of) for name, (model, loss_of) in runs.items()}  # warm-up
    peak = matmul_peak(device, dtype)
    times = {name: [] for name in runs}
    for _ in range(args.steps):   # interleaved, so that all see the same machine load
        for name, (model, loss_of) in runs.items():
            times[name].append(timed(lambda: train_step(model, inputs, targets, loss_of), device)[0])
    peak = max(peak, matmul_peak(device, dtype))
    products = products_seconds(cfg, tokens, device, dtype)
    step_flops = tokens * flops_per_token(cfg, args.seq_len)["training GFLOPs/token"] * 1e9   # the same for all three
    ref = statistics.median(times["transformers GPT2LMHeadModel"])
    print(f"Training step, batch 2 x {args.seq_len} tokens (median of {args.steps} after a warm-up); "
          f"{step_flops / 1e9:.0f} GFLOP a step; {'bfloat16 autocast' if args.bf16 else 'float32'}, whose peak here is {peak / 1e9:.0f} GFLOP/s")
    print(f"{'model':<34} {'loss':>8} {'s/step':>8} {'tokens/s':>9} {'vs transformers':>16} {'GFLOP/s':>8} {'of peak':>8}")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:<34} {losses[name]:>8.4f} {m:>8.3f} {tokens / m:>9.0f} {ref / m:>15.2f}x "
              f"{step_flops / m / 1e9:>8.0f} {step_flops / m / peak:>8.0%}")
    print(f"{'a step at the 4096^3 peak':<34} {'':>8} {step_flops / peak:>8.3f} {tokens * peak / step_flops:>9.0f} "
          f"{ref * peak / step_flops:>15.2f}x")
    product_weights = flops_per_token(cfg)["non-embedding params"] + cfg["vocab_size"] * cfg["emb_dim"]   # the blocks' and the head's
    product_flops = 6 * tokens * product_weights   # the products' own FLOPs: attention left out
    label = "the step's products alone"   # (a quote inside an f-string's braces needs Python 3.12)
    print(f"{label:<34} {'':>8} {products:>8.3f} {tokens / products:>9.0f} {ref / products:>15.2f}x "
          f"{product_flops / products / 1e9:>8.0f} {product_flops / products / peak:>8.0%}  (the ceiling with F.linear's products)")

    if args.no_generation: return

    # 2. generation
    for m in (book, llmfs, theirs): m.eval()
    llmfs_bf16 = copy.deepcopy(llmfs).bfloat16()   # what generate, chat and serve load where this CPU multiplies bfloat16 fast
    prompt = torch.randint(0, cfg["vocab_size"], (1, 10), generator=g).to(device)
    n, ctx = args.new_tokens, cfg["context_length"]
    gens = {
        "book, generate_text_simple (no cache)": lambda: generate_text_simple(book, prompt, n, ctx),
        "book, generate_text_simple_cached": lambda: generate_text_simple_cached(book, prompt, n),
        "llmfs, generate_text_simple (no cache)": lambda: generate_text_simple(llmfs, prompt, n, ctx),
        "llmfs, generate_text_simple_cached": lambda: generate_text_simple_cached(llmfs, prompt, n),
        "llmfs, bf16 weights, cached": lambda: generate_text_simple_cached(llmfs_bf16, prompt, n),
        "transformers generate(use_cache=True)": lambda: theirs.generate(prompt, attention_mask=torch.ones_like(prompt),
            max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True, pad_token_id=0),
    }
    with torch.no_grad():
        outs = {name: fn() for name, fn in gens.items()}  # warm-up; the tokens are compared below
        gtimes, bandwidths = {name: [] for name in gens}, []
        for _ in range(args.gen_repeats):   # each round measures the bandwidth too: the limit sees the same load as the generators
            bandwidths.append(read_bandwidth(device, repeats=3))
            for name, fn in gens.items(): gtimes[name].append(timed(fn, device)[0])
    ours = [out for name, out in outs.items() if not name.startswith("transformers") and "bf16" not in name]
    same = all(torch.equal(ours[0], out) for out in ours)
    print(f"\nGreedy generation of {n} tokens from a 10-token prompt (median of {args.gen_repeats} after a warm-up); "
          f"all of ours give the same tokens: {same}")
    hf = statistics.median(gtimes["transformers generate(use_cache=True)"])
    print(f"{'generator':<42} {'s':>7} {'tokens/s':>9} {'vs same model, no cache':>24} {'vs transformers':>16}")
    for name, ts in gtimes.items():
        m = statistics.median(ts)
        nocache = statistics.median(gtimes[name.replace("_cached", " (no cache)")]) if name.endswith("_cached") else \
                  statistics.median(gtimes["llmfs, generate_text_simple (no cache)"]) if "bf16" in name else m
        print(f"{name:<42} {m:>7.2f} {n / m:>9.1f} {nocache / m:>23.2f}x {hf / m:>15.2f}x")

    # 3. the bandwidth limit
    bandwidth, weights = statistics.median(bandwidths), weight_bytes_per_token(book)
    limit = bandwidth / weights
    print(f"\nRead bandwidth {bandwidth / 1e9:.1f} GB/s (summing 1 GiB, median of the {len(bandwidths)} rounds' medians, "
          f"{min(bandwidths) / 1e9:.1f}-{max(bandwidths) / 1e9:.1f}); {weights / 1e6:.0f} MB of weights read per token: at most {limit:.1f} tokens/s")
    for name in ("book, generate_text_simple_cached", "llmfs, generate_text_simple_cached", "transformers generate(use_cache=True)"):
        speed = n / statistics.median(gtimes[name])
        print(f"{name:<42} {speed:>7.1f} tokens/s = {speed / limit:>4.0%} of the limit")
    limit16 = bandwidth / weight_bytes_per_token(llmfs_bf16)
    speed = n / statistics.median(gtimes["llmfs, bf16 weights, cached"])
    fast, why = bf16_verdict(device)
    print(f"{'llmfs, bf16 weights, cached':<42} {speed:>7.1f} tokens/s = {speed / limit16:>4.0%} of its limit ({limit16:.1f} tokens/s "
          f"for {weight_bytes_per_token(llmfs_bf16) / 1e6:.0f} MB); llmfs generates in {'bf16' if fast else 'fp32'} here: {why}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per model")
    p.add_argument("--seq-len", type=int, default=256, help="tokens per sequence in the training step")
    p.add_argument("--gen-repeats", type=int, default=5, help="timed generations per generator")
    p.add_argument("--new-tokens", type=int, default=200, help="tokens to generate")
    p.add_argument("--bf16", action="store_true", help="the training steps under bfloat16 autocast (and the bfloat16 peak)")
    p.add_argument("--no-generation", action="store_true", help="the training step only")
    p.add_argument("--glibc-defaults", action="store_true", help="leave glibc's allocator settings (freed large blocks go back to the system)")
    main(p.parse_args())
