"""Time to first token and streaming speed of `llmfs serve`, against the same generation in-process, GPT-2 124M, random weights.

A GPTModel of GPT_CONFIG_124M with random weights is saved as a checkpoint and served by `llmfs serve` (its own
process, as users run it: oneDNN linear layers where measured faster on a CPU). The client streams
`/v1/completions` (`--new-tokens` tokens, temperature 0) and measures the time from sending the request to the first
piece of text (time to first token) and the tokens per second after it. The reference, in this process and taking
turns with the server: notebook 03's `generate_stream` on the same weights and the same prompt (also with
`use_fast_linear`), timed the same way. Medians of `--repeats` runs.

    python benchmarks/serve.py [--new-tokens 100] [--repeats 5] [--prompt-tokens 50]
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# benchmarks/tokenizers.py would shadow the `tokenizers` package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch

from llm_from_scratch.gpt_model import GPT_CONFIG_124M, GPTModel
from llm_from_scratch.pretraining import generate_stream
from llm_from_scratch.engine.checkpoints import load_model, save_checkpoint
from llm_from_scratch.text_data import get_tokenizer
from llm_from_scratch.engine.speed import cpu_name, use_fast_linear, use_fused_layers


def stream_server(url, prompt, n):
    "(seconds to the first text, tokens per second after it, tokens) of one streamed completion."
    body = json.dumps({"prompt": prompt, "max_tokens": n, "temperature": 0, "stream": True}).encode()
    start = time.perf_counter()
    first = last = None
    tokens = 0
    with urllib.request.urlopen(urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})) as r:
        for line in r:
            if not line.startswith(b"data: {"): continue
            event = json.loads(line[6:])
            if event["choices"][0]["text"]:
                last = time.perf_counter()
                first = first or last
            if event.get("usage"): tokens = event["usage"]["completion_tokens"]
    return first - start, (tokens - 1) / (last - first), tokens


def stream_library(model, ids, n):
    "The same for generate_stream in this process."
    start = time.perf_counter()
    times = [time.perf_counter() for _ in generate_stream(model, ids, n, 1024, eos_id=50256)]
    return times[0] - start, (len(times) - 1) / (times[-1] - times[0]), len(times)


def main(args):
    tok = get_tokenizer()
    prompt = tok.decode(tok.encode("Every effort moves you " * 100)[:args.prompt_tokens])
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(123)
        save_checkpoint(Path(d) / "gpt2", GPTModel({**GPT_CONFIG_124M, "drop_rate": 0.0}))
        model = use_fast_linear(use_fused_layers(load_model(Path(d) / "gpt2")))   # as the server runs it
        ids = torch.tensor([tok.encode(prompt)])
        server = subprocess.Popen([sys.executable, "-m", "llm_from_scratch", "serve", "--checkpoint", str(Path(d) / "gpt2"),
                                   "--port", "0", "--max-tokens-limit", str(args.new_tokens)], stdout=subprocess.PIPE, text=True)
        try:
            url = re.search(r"at (http://\S+)/ :", server.stdout.readline())[1]
            print(f"torch {torch.__version__}, {cpu_name()}, {torch.get_num_threads()} threads; GPT-2 124M (random weights), "
                  f"{args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, greedy\n")
            stream_server(url, prompt, 5), stream_library(model, ids, 5)   # warm-up
            runs = {"llmfs serve, streamed over HTTP": [], "generate_stream in-process": []}
            for _ in range(args.repeats):
                runs["llmfs serve, streamed over HTTP"].append(stream_server(url, prompt, args.new_tokens))
                runs["generate_stream in-process"].append(stream_library(model, ids, args.new_tokens))
        finally:
            server.terminate(); server.wait(30)
    ref_first = statistics.median(r[0] for r in runs["generate_stream in-process"])
    ref_speed = statistics.median(r[1] for r in runs["generate_stream in-process"])
    print("| run | time to first token | tokens/s after it | tokens | first token vs in-process | tokens/s vs in-process |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, results in runs.items():
        first, speed = statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)
        print(f"| {name} | {first * 1000:.0f} ms | {speed:.1f} | {results[0][2]} | {first / ref_first:.2f}x | {speed / ref_speed:.2f}x |")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--new-tokens", type=int, default=100)
    p.add_argument("--prompt-tokens", type=int, default=50)
    p.add_argument("--repeats", type=int, default=5)
    main(p.parse_args())
