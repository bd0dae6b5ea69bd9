"""DPO with the book's reference model against precomputed reference log-probabilities (notebook 08), side by side.

GPT-2 124M (random weights, dropout 0) as the instruction-tuned starting point, the book's preference texts, batch 8,
AdamW lr 5e-6 and weight decay 0.01, beta 0.1, evaluations every 5 steps on 5 training and 5 validation batches (the
book's settings), `--steps` training steps. "book loop" is `train_model_dpo_simple` with a frozen reference copy;
"precomputed" runs `add_reference_logprobs` once over the training and validation pairs (its time included) and then
`train_dpo` with no reference model. Times are medians of `--repeats` runs, the two ways taking turns; the weights
that both end with are compared. Model memory: the parameters each way keeps (the reference copy is a second model).

    python benchmarks/dpo.py [--device cpu|cuda] [--steps 10] [--repeats 3]
"""
import argparse
import contextlib
import io
import statistics
import sys
import time
from functools import partial
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch
from torch.utils.data import DataLoader

from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel
from llm_from_scratch.instruction_tuning import format_input, split_data
from llm_from_scratch.preference_tuning import (PreferenceDataset, add_reference_logprobs, custom_collate_fn, load_preference_data,
                                                reference_copy, train_dpo, train_model_dpo_simple)
from llm_from_scratch.text_data import download, get_tokenizer
from llm_from_scratch.engine.speed import cpu_name


def run(way, start, train_data, val_data, tokenizer, device, steps):
    "One DPO run from the weights `start`: (seconds, final weights, parameter bytes held)."
    model = GPTModel({**GPT_CONFIG_124M, "drop_rate": 0.0}).to(device)
    model.load_state_dict(start)
    collate = partial(custom_collate_fn, device=device, allowed_max_length=1024)
    if device.type == "cuda": torch.cuda.synchronize()
    t0 = time.perf_counter()
    train_set, val_set = PreferenceDataset(train_data, tokenizer), PreferenceDataset(val_data, tokenizer)
    if way == "precomputed":
        reference = None
        for dataset in (train_set, val_set): add_reference_logprobs(dataset, model, collate, progress=False)
    else: reference = reference_copy(model)
    torch.manual_seed(123)
    train_loader = DataLoader(train_set, batch_size=8, collate_fn=collate, shuffle=True, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=8, collate_fn=collate)
    torch.manual_seed(123)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-6, weight_decay=0.01)
    if way == "precomputed": train_dpo(model, train_loader, val_loader, optimizer, 1, 0.1, 5, 5, progress=False, log=lambda line: None)
    else:
        with contextlib.redirect_stdout(io.StringIO()):  # the book's loop prints its evaluations and a sample
            train_model_dpo_simple(model, reference, train_loader, val_loader, optimizer, 1, 0.1, 5, 5, format_input(val_data[2]), tokenizer)
    if device.type == "cuda": torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    held = sum(p.numel() * p.element_size() for m in (model, reference) if m is not None for p in m.parameters())
    return seconds, {k: v.detach().cpu() for k, v in model.state_dict().items()}, held


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device, tokenizer = torch.device(args.device), get_tokenizer()
    train_data, val_data, _ = split_data(load_preference_data(download("instruction-data-with-preference.json")))
    train_data, val_data = train_data[:8 * args.steps], val_data[:40]
    torch.manual_seed(123)
    start = GPTModel({**GPT_CONFIG_124M, "drop_rate": 0.0}).state_dict()
    ways = ("book loop", "precomputed")
    times, finals, held = {w: [] for w in ways}, {}, {}
    for _ in range(args.repeats):
        for way in ways:
            seconds, finals[way], held[way] = run(way, start, train_data, val_data, tokenizer, device, args.steps)
            times[way].append(seconds)
    diff = max((finals["book loop"][k] - finals["precomputed"][k]).abs().max().item() for k in start)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"DPO, GPT-2 124M (random weights), {args.steps} steps of 8 pairs, evaluations every 5 steps on 5 + 5 batches; "
          f"{name}, torch {torch.__version__}, median of {args.repeats}")
    print("| way | time | vs book loop | model memory (parameters held) |")
    print("|---|---|---|---|")
    for way in ways:
        t = statistics.median(times[way])
        print(f"| {way} | {t:.1f} s | {statistics.median(times['book loop']) / t:.2f}x | {held[way] / 2**20:,.0f} MiB |")
    print(f"largest difference between the two ways' final weights: {diff:.2e}")


if __name__ == "__main__": main()
