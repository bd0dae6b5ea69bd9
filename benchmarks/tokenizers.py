"""Encoding speed: the course's pure-Python `BPETokenizerSimple` (GPT-2's merges) against tiktoken (Rust).

Prints, for the-verdict.txt and instruction-data.json, the first (cold) encode of each tokenizer on a freshly built
object, then the median of repeated encodes and their ratio (ours / tiktoken). Both give the same token IDs (checked).

    python benchmarks/tokenizers.py [--repeats 30]
"""
import argparse
import platform
import statistics
import time

import tiktoken

from llm_from_scratch.text_data import BPETokenizerSimple, download, gpt2_encoding_from_files


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(repeats: int):
    encoder_json, vocab_bpe = download("gpt2/encoder.json"), download("gpt2/vocab.bpe")
    texts = {"the-verdict.txt": download("the-verdict.txt").read_text(encoding="utf-8"),
             "instruction-data.json": download("instruction-data.json").read_text(encoding="utf-8")}
    print(f"python {platform.python_version()}, tiktoken {tiktoken.__version__}, {platform.machine()}, "
          f"{repeats} repeated encodes per row (medians)\n")
    header = f"{'text':<22} {'chars':>7} {'tokens':>7} | {'cold ms: ours':>13} {'tiktoken':>9} | {'median ms: ours':>15} {'tiktoken':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for name, text in texts.items():
        ours = BPETokenizerSimple().load_vocab_and_merges_from_openai(encoder_json, vocab_bpe)  # empty chunk cache
        ref = gpt2_encoding_from_files(encoder_json, vocab_bpe)
        cold_ours, ids_ours = timed(lambda: ours.encode(text, allowed_special="all"))
        cold_ref, ids_ref = timed(lambda: ref.encode(text, allowed_special="all"))
        assert ids_ours == ids_ref, f"{name}: the token IDs differ"
        t_ours, t_ref = [], []
        for _ in range(repeats):  # interleaved, so that both see the same machine load
            t_ours.append(timed(lambda: ours.encode(text, allowed_special="all"))[0])
            t_ref.append(timed(lambda: ref.encode(text, allowed_special="all"))[0])
        m_ours, m_ref = statistics.median(t_ours), statistics.median(t_ref)
        print(f"{name:<22} {len(text):>7} {len(ids_ref):>7} | {cold_ours*1e3:>13.1f} {cold_ref*1e3:>9.1f} | "
              f"{m_ours*1e3:>15.2f} {m_ref*1e3:>9.2f} {m_ours/m_ref:>5.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="repeated encodes per tokenizer and text")
    main(parser.parse_args().repeats)
