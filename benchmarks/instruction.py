"""Answering the test set: one prompt at a time (the book's way) against batches of prompts, side by side in one process.

A GPTModel of GPT-2 small's size (124M, random weights: the speed does not depend on them) answers the first
`--prompts` instructions of the chapter-7 test set with greedy decoding, `--new-tokens` tokens each (random weights
never write the end-of-text token, so every answer is full length). `generate_response` one entry at a time against
`generate_responses` with batches of `--batch-size` (left padding, a mask, a KV cache per batch). The runs take turns
`--repeats` times; the table shows medians, and checks that both give the same answers.

    python benchmarks/instruction.py [--device cpu|cuda] [--prompts 16] [--batch-size 8] [--new-tokens 64] [--repeats 3]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

# benchmarks/tokenizers.py would shadow the `tokenizers` package that transformers imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch

from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel
from llm_from_scratch.instruction_tuning import generate_response, generate_responses, load_json_entries, split_data
from llm_from_scratch.text_data import DATA_FILES, download, get_tokenizer
from llm_from_scratch.engine.speed import cpu_name


def main(args):
    device = torch.device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    print(f"torch {torch.__version__}, {device}: {name}, {torch.get_num_threads()} threads")
    entries = split_data(load_json_entries(download(DATA_FILES["instruction-data.json"])))[2][:args.prompts]
    tokenizer = get_tokenizer()
    torch.manual_seed(123)
    model = GPTModel({**GPT_CONFIG_124M, "drop_rate": 0.0}).to(device).eval()

    def sync():
        if device.type == "cuda": torch.cuda.synchronize()

    ways = {"one at a time (generate_response)": lambda: [generate_response(model, e, tokenizer, device, args.new_tokens) for e in entries],
            f"batches of {args.batch_size} (generate_responses)": lambda: generate_responses(
                model, entries, tokenizer, device, batch_size=args.batch_size, max_new_tokens=args.new_tokens, progress=False)}
    times, answers = {w: [] for w in ways}, {}
    for _ in range(args.repeats):
        for way, run in ways.items():
            sync(); start = time.perf_counter()
            answers[way] = run()
            sync(); times[way].append(time.perf_counter() - start)
    first, second = answers.values()
    print(f"{len(entries)} test prompts, {args.new_tokens} new tokens each; the same answers both ways: {first == second}\n")
    ref = statistics.median(times[next(iter(ways))])
    print(f"{'way':<40} {'s':>8} {'tokens/s':>9} {'speed-up':>9}")
    for way, ts in times.items():
        t = statistics.median(ts)
        print(f"{way:<40} {t:>8.2f} {len(entries) * args.new_tokens / t:>9.1f} {ref / t:>8.2f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--prompts", type=int, default=16, help="test prompts to answer")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per batch")
    p.add_argument("--new-tokens", type=int, default=64, help="tokens per answer")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each way")
    main(p.parse_args())
