"""Classification finetuning speed: the book's chapter-6 setup, ours against transformers, side by side in one process.

GPT-2 124M config with random weights (the speed does not depend on the values), the last transformer block, the
final norm and a new 2-way head trainable, dropout 0, batch 8, the real SMS spam training texts padded to 120 tokens
(the book's), AdamW 5e-5. Three ways to train the same number of batches for the book's 5 epochs:

- the book's loop (`train_classifier_simple`'s steps): the whole model on every batch, the last position read;
- `train_classifier` as `llmfs finetune-classifier` runs it: frozen blocks run once per text and kept, every text cut
  after its last real token, the fast CPU linear layers where they help (nbs/engine/03_speed);
- transformers' `GPT2ForSequenceClassification` with the same parts frozen (it reads the last non-padding token).

Each run times every epoch (epoch 1 of ours includes computing what it keeps); the runs take turns, `--repeats`
times, and the table shows medians. `--batches` cuts an epoch to its first N batches (the book's epoch is 130) so that
the run fits in minutes on a CPU; the ratios do not depend on it. Peak memory: each way trains once more, 2 epochs, in
a fresh process (CPU: the peak resident memory of that process while it trains, and its growth over the model alone; CUDA: the peak
allocated memory).

    python benchmarks/classification.py [--device cpu|cuda] [--batches 12] [--repeats 3] [--epochs 5]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/tokenizers.py would shadow the `tokenizers` package that transformers imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from llm_from_scratch.classification import (CachedTexts, SpamDataset, calc_loss_batch, create_balanced_dataset,
                                             frozen_blocks, keep_length, prepare_classifier, random_split)
from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel
from llm_from_scratch.text_data import DATA_FILES, download, get_tokenizer
from llm_from_scratch.engine.speed import cpu_name, use_fast_linear, use_fused_layers

WAYS = ("book loop (GPTModel)", "llmfs train_classifier", "transformers GPT2ForSequenceClassification")


def spam_training_set(n_examples):
    "The book's training texts (balanced, split, padded to the longest: 120 tokens), the first `n_examples`."
    df = pd.read_csv(download(DATA_FILES["sms_spam_collection/SMSSpamCollection.tsv"]), sep="\t", header=None, names=["Label", "Text"])
    df = create_balanced_dataset(df)
    df["Label"] = df["Label"].map({"ham": 0, "spam": 1})
    with tempfile.TemporaryDirectory() as d:
        random_split(df, 0.7, 0.1)[0].to_csv(Path(d)/"train.csv", index=None)
        ds = SpamDataset(Path(d)/"train.csv", get_tokenizer())
    assert ds.max_length == 120, ds.max_length
    return Subset(ds, range(min(n_examples, len(ds))))


def hf_classifier(cfg):
    from transformers import GPT2Config, GPT2ForSequenceClassification
    from transformers.utils import logging
    logging.set_verbosity_error()   # its advice to pass an attention mask: causal attention makes it moot here
    config = GPT2Config(vocab_size=cfg["vocab_size"], n_positions=cfg["context_length"], n_embd=cfg["emb_dim"],
                        n_layer=cfg["n_layers"], n_head=cfg["n_heads"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        num_labels=2, pad_token_id=50256)
    model = GPT2ForSequenceClassification(config)
    for p in model.parameters(): p.requires_grad = False
    for part in (model.transformer.h[-1], model.transformer.ln_f, model.score):
        for p in part.parameters(): p.requires_grad = True
    return model


def build(way, cfg, device):
    torch.manual_seed(123)
    if way.startswith("transformers"): return hf_classifier(cfg).to(device)
    model = prepare_classifier(GPTModel(cfg), trainable="last_block", readout="last" if way.startswith("book") else "last_real").to(device)
    if way.startswith("llmfs"): use_fused_layers(model)
    if way.startswith("llmfs") and device.type == "cpu": use_fast_linear(model)
    return model


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def train_epochs(way, model, data, device, epochs, batch_size=8):
    "Train `epochs` epochs the way `way` does; the seconds of each epoch and the last loss."
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5, weight_decay=0.1)
    times, loss = [], None
    torch.manual_seed(123)
    sync(device); start = time.perf_counter()
    if way.startswith("llmfs"):   # what train_classifier does, timed epoch by epoch
        texts = CachedTexts(data, model, frozen_blocks(model), device, readout="last_real")
        loader, step = texts.loader(batch_size, shuffle=True, drop_last=True), texts.loss_batch
    else:
        loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
        step = calc_loss_batch if way.startswith("book") else \
            lambda x, y, m, d: F.cross_entropy(m(x.to(d)).logits, y.to(d))
    model.train()
    for _ in range(epochs):
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = step(inputs, targets, model, device)
            loss.backward()
            optimizer.step()
        sync(device); now = time.perf_counter(); times.append(now - start); start = now
    return times, loss.item()


def rss_mib(field="VmRSS"):
    "This process's resident memory (VmRSS) or its peak since the last `reset_peak` (VmHWM), in MiB."
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(field + ":"))


def reset_peak():
    "Start the peak resident memory (VmHWM) afresh from now (Linux)."
    with open("/proc/self/clear_refs", "w") as f: f.write("5")


def memory_child(args):
    "Train one way for 2 epochs in this fresh process and print its memory as JSON."
    device, cfg = torch.device(args.device), {**GPT_CONFIG_124M, "drop_rate": 0.0}
    data = spam_training_set(args.batches * 8)
    model = build(args.memory_of, cfg, device)
    before = rss_mib()
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats()
    else: reset_peak()   # the peak of building the model is not training's
    train_epochs(args.memory_of, model, data, device, 2)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else rss_mib("VmHWM")
    print(json.dumps({"peak": peak, "growth": peak - before if device.type == "cpu" else None}))


def main(args):
    device, cfg = torch.device(args.device), {**GPT_CONFIG_124M, "drop_rate": 0.0}
    data = spam_training_set(args.batches * 8)
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    print(f"torch {torch.__version__}, {device}: {name}, {torch.get_num_threads()} threads")
    kept = sum(keep_length(data[i][0], "last_real") for i in range(len(data)))
    print(f"{len(data)} training texts ({args.batches} batches of 8 per epoch; the book's epoch is 130), "
          f"{kept / len(data):.1f} tokens each on average up to the last real one, of 120\n")
    times = {way: [] for way in WAYS}
    for _ in range(args.repeats):
        for way in WAYS:
            model = build(way, cfg, device)   # fresh weights and optimizer every run
            times[way].append(train_epochs(way, model, data, device, args.epochs)[0])
    mem = {}
    if not args.no_memory:
        for way in WAYS:
            out = subprocess.run([sys.executable, __file__, "--memory-of", way, "--device", args.device, "--batches", str(args.batches)],
                                 capture_output=True, text=True, check=True)
            mem[way] = json.loads(out.stdout.strip().splitlines()[-1])
    total = {way: statistics.median(sum(t) for t in ts) for way, ts in times.items()}
    ref = total[WAYS[2]]
    n = args.batches * 8
    print(f"{'way':<44} {'epoch 1 s':>10} {'later s':>8} {'ex/s (ep 1)':>12} {'ex/s (later)':>13} "
          f"{f'{args.epochs} epochs s':>11} {'vs transformers':>16} {'peak MiB':>9} {'growth MiB':>11}")
    for way, ts in times.items():
        first = statistics.median(t[0] for t in ts)
        later = statistics.median(statistics.mean(t[1:]) for t in ts) if args.epochs > 1 else float("nan")
        m = mem.get(way, {})
        growth = f"{m['growth']:>11.0f}" if m.get("growth") is not None else f"{'-':>11}"
        peak = f"{m['peak']:>9.0f}" if m else f"{'-':>9}"
        print(f"{way:<44} {first:>10.2f} {later:>8.2f} {n / first:>12.1f} {n / later:>13.1f} {total[way]:>11.2f} "
              f"{ref / total[way]:>15.2f}x {peak} {growth}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batches", type=int, default=12, help="batches of 8 per epoch (the book's epoch is 130)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per run (the book's 5)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each way")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--memory-of", choices=WAYS, help=argparse.SUPPRESS)
    a = p.parse_args()
    memory_child(a) if a.memory_of else main(a)
