"""GPTModel against transformers' GPT2LMHeadModel, side by side in one process, 124M config, random weights.

1. One training step (forward, cross-entropy, backward) at batch 2 x 256 tokens, dropout 0 in both:
   median of `--steps` steps after a warm-up. Ours runs twice: as shipped (on a CPU its linear layers go through
   oneDNN, see notebook 01) and with `set_onednn_linear(False)` (plain `F.linear`, as transformers uses), so the
   table shows where the difference comes from.
2. Greedy generation of 200 new tokens from a 10-token prompt: ours with the KV cache, ours without it, and
   `GPT2LMHeadModel.generate(use_cache=True, do_sample=False)`, and ours with the cache but without oneDNN:
   median of `--gen-repeats` runs.

    python benchmarks/model.py [--device cpu|cuda] [--steps 5] [--gen-repeats 5] [--new-tokens 200]
"""
import argparse
import contextlib
import platform
import statistics
import sys
import time
from pathlib import Path

# benchmarks/tokenizers.py would shadow the `tokenizers` package that transformers imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch
import torch.nn.functional as F

from llm_from_scratch.attention import set_onednn_linear
from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel, generate_text_simple


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


@contextlib.contextmanager
def onednn_linear(enabled):
    "Linear layers through oneDNN (our default on a CPU) or not, for the duration of the block."
    previous = set_onednn_linear(enabled)
    try: yield
    finally: set_onednn_linear(previous)


def plain_linear(fn):
    with onednn_linear(False): return fn()


def train_step(model, inputs, targets, logits_of, onednn=True):
    with onednn_linear(onednn):
        model.zero_grad(set_to_none=True)
        logits = logits_of(model, inputs)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        loss.backward()
        return loss.item()


def main(args):
    device = torch.device(args.device)
    cfg = {**GPT_CONFIG_124M, "drop_rate": 0.0}
    torch.manual_seed(123)
    ours = GPTModel(cfg).to(device)
    theirs = hf_model(cfg, device)
    print(f"torch {torch.__version__}, {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else platform.processor() or platform.machine()}), "
          f"{torch.get_num_threads()} threads\n")

    # 1. training step
    ours.train(); theirs.train()
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, cfg["vocab_size"], (2, args.seq_len + 1), generator=g).to(device)
    inputs, targets = data[:, :-1], data[:, 1:]
    runs = {"ours (GPTModel)": (ours, lambda m, x: m(x), True),
            "ours, set_onednn_linear(False)": (ours, lambda m, x: m(x), False),
            "transformers GPT2LMHeadModel": (theirs, lambda m, x: m(x).logits, True)}
    losses = {name: train_step(model, inputs, targets, logits_of, onednn) for name, (model, logits_of, onednn) in runs.items()}  # warm-up
    times = {name: [] for name in runs}
    for _ in range(args.steps):   # interleaved, so that all see the same machine load
        for name, (model, logits_of, onednn) in runs.items():
            times[name].append(timed(lambda: train_step(model, inputs, targets, logits_of, onednn), device)[0])
    ref = statistics.median(times["transformers GPT2LMHeadModel"])
    print(f"Training step, batch 2 x {args.seq_len} tokens (median of {args.steps} after a warm-up)")
    print(f"{'model':<32} {'loss':>8} {'s/step':>8} {'tokens/s':>9} {'speed-up vs transformers':>25}")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:<32} {losses[name]:>8.4f} {m:>8.3f} {2 * args.seq_len / m:>9.0f} {ref / m:>24.2f}x")

    # 2. generation
    ours.eval(); theirs.eval()
    prompt = torch.randint(0, cfg["vocab_size"], (1, 10), generator=g).to(device)
    n = args.new_tokens
    gens = {
        "ours, KV cache": lambda: generate_text_simple(ours, prompt, n, cfg["context_length"], use_cache=True),
        "ours, no cache": lambda: generate_text_simple(ours, prompt, n, cfg["context_length"], use_cache=False),
        "ours, KV cache, set_onednn_linear(False)": lambda: plain_linear(
            lambda: generate_text_simple(ours, prompt, n, cfg["context_length"], use_cache=True)),
        "transformers generate(use_cache=True)": lambda: theirs.generate(prompt, attention_mask=torch.ones_like(prompt),
            max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True, pad_token_id=0),
    }
    with torch.no_grad():
        for fn in gens.values(): fn()  # warm-up; the tokens are compared below
        outs = {name: fn() for name, fn in gens.items()}
        gtimes = {name: [] for name in gens}
        for _ in range(args.gen_repeats):
            for name, fn in gens.items(): gtimes[name].append(timed(fn, device)[0])
    same = all(torch.equal(outs["ours, KV cache"], out) for name, out in outs.items() if name.startswith("ours"))
    print(f"\nGreedy generation of {n} tokens from a 10-token prompt (median of {args.gen_repeats} after a warm-up); "
          f"all of ours give the same tokens: {same}")
    base, hf = statistics.median(gtimes["ours, no cache"]), statistics.median(gtimes["transformers generate(use_cache=True)"])
    print(f"{'generator':<42} {'s':>7} {'tokens/s':>9} {'vs ours no cache':>17} {'vs transformers':>16}")
    for name, ts in gtimes.items():
        m = statistics.median(ts)
        print(f"{name:<42} {m:>7.2f} {n / m:>9.1f} {base / m:>16.2f}x {hf / m:>15.2f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per model")
    p.add_argument("--seq-len", type=int, default=256, help="tokens per sequence in the training step")
    p.add_argument("--gen-repeats", type=int, default=5, help="timed generations per generator")
    p.add_argument("--new-tokens", type=int, default=200, help="tokens to generate")
    main(p.parse_args())
