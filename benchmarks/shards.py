"""Pretraining on text larger than memory (nbs/engine/04_shards): prepare a 50 MB and a 500 MB corpus, then stream one pass over the train windows.

For each corpus: `prepare_shards` (time, MB/s, peak memory of the main process and of a worker), then one pass over every training
window through `distributed_loader` (context 256, batch 8), with the process's resident memory sampled during the pass: VmHWM (the peak),
RssAnon (memory of its own) and RssFile (file pages mapped in). Flat memory means these do not grow with the corpus. The pass is made
twice, with the course's `ResumableDistributedSampler` and with PyTorch's `DistributedSampler` (a Python list of every window) for
comparison. Each step runs in a fresh process, so that each peak belongs to that step alone.

    python benchmarks/shards.py [--sizes 50 500] [--workers 2] [--keep DIR]
"""
import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import tempfile

DATA = None  # the corpora and shards: a temporary folder, made by main()
FILE_MB = 2.5  # about the size of a Project Gutenberg book
MB = 1 << 20


def proc_status() -> dict:
    "VmHWM, VmRSS, RssAnon and RssFile of this process, in MB."
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"): out[key] = int(rest.split()[0])/1024  # kB -> MB
    return out


def make_corpus(folder:Path, size_mb:int, seed:int=0):
    "About `size_mb` MB of text in ~2.5 MB files (10 a folder), each a random sequence of the-verdict.txt's paragraphs."
    from llm_from_scratch.text_data import download
    paras = [p for p in download("the-verdict.txt").read_text(encoding="utf-8").split("\n\n") if p.strip()]
    rng = random.Random(seed)
    n_files = max(1, round(size_mb/FILE_MB))

    per_file = int(size_mb*MB/n_files)
    for i in range(n_files):
        parts, n = [], 0
        while n < per_file:
            p = rng.choice(paras); parts.append(p); n += len(p) + 2
        path = folder/f"part{i//10:03d}"/f"book{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(parts), encoding="utf-8")
    (folder/"part000"/"cp1252.txt").write_bytes("na\xefve caf\xe9".encode("cp1252"))  # one non-UTF-8 file: skipped


def step_prepare(corpus:Path, out:Path, workers:int):
    from llm_from_scratch.engine import shards
    t0 = time.time()
    index = shards.prepare_shards([corpus], out, workers=workers, progress=False, log=lambda *a: None)
    seconds = time.time() - t0
    import resource
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024  # kB -> MB: the largest worker's peak
    corpus_mb = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())/MB
    print(json.dumps(dict(corpus_mb=corpus_mb, seconds=seconds, tokens=index["total_tokens"], shards=len(index["shards"]),
                          skipped=index["files_skipped"], files=index["files_read"], parent_peak_mb=proc_status()["VmHWM"],
                          worker_peak_mb=child_peak)))


def step_stream(out:Path, context_length:int, batch_size:int, sampler:str):
    import torch
    from llm_from_scratch.engine import distributed, shards
    if sampler == "plain":  # torch's own DistributedSampler (a Python list of every window index), for comparison
        distributed.ResumableDistributedSampler = torch.utils.data.distributed.DistributedSampler
    base = proc_status()
    loader = distributed.distributed_loader(shards.ShardDataset(out, context_length), batch_size)
    loader.sampler.set_epoch(0)
    peak = dict(base)
    t0, n_batches, checksum = time.time(), 0, 0
    for x, _y in loader:
        n_batches += 1
        checksum += int(x[0, 0])
        if n_batches % 256 == 0:
            now = proc_status()
            peak = {k: max(peak[k], now[k]) for k in peak}
    seconds = time.time() - t0
    now = proc_status()
    peak = {k: max(peak[k], now[k]) for k in peak}
    print(json.dumps(dict(windows=len(loader.dataset), batches=n_batches, seconds=seconds, base=base, peak=peak)))


def run_step(*args) -> dict:
    "Run a step of this script in a fresh process; its JSON line."
    r = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True)
    if r.returncode: raise RuntimeError(f"step {args} failed:\n{r.stdout}\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 500])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the corpora and shards (in a temporary folder, printed)")
    ap.add_argument("--step", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.step:
        if a.step[0] == "prepare": return step_prepare(Path(a.step[1]), Path(a.step[2]), int(a.step[3]))
        return step_stream(Path(a.step[1]), int(a.step[2]), int(a.step[3]), a.step[4])
    global DATA
    DATA = Path(tempfile.mkdtemp(prefix="llmfs-shards-bench-"))
    if a.keep: print(f"corpora and shards in {DATA}")
    rows = []
    try:
        for size in a.sizes:
            corpus, out = DATA/f"corpus_{size}mb", DATA/f"shards_{size}mb"
            shutil.rmtree(corpus, ignore_errors=True); shutil.rmtree(out, ignore_errors=True)
            t0 = time.time(); make_corpus(corpus, size); made = time.time() - t0
            print(f"[{size} MB] corpus written in {made:.1f} s; preparing shards ...", flush=True)
            prep = run_step("--step", "prepare", corpus, out, a.workers)
            print(f"[{size} MB] {prep}", flush=True)
            shutil.rmtree(corpus)  # free the disk before streaming
            for sampler in ("lean", "plain"):
                stream = run_step("--step", "stream", out, a.context, a.batch, sampler)
                print(f"[{size} MB] {sampler}: {stream}", flush=True)
                rows.append((sampler, prep, stream))
            if not a.keep: shutil.rmtree(out)
    finally:
        if not a.keep: shutil.rmtree(DATA, ignore_errors=True)
    print(f"\nprepare_shards (workers={a.workers}, shard_tokens=50M) and one pass over the train windows with distributed_loader "
          f"(context {a.context}, batch {a.batch}); memory in MB")
    head = ("corpus", "sampler", "tokens", "shards", "prep s", "MB/s", "prep peak (main/worker)", "windows", "pass s", "VmHWM", "RssAnon peak",
            "RssFile peak", "RssAnon at start")
    lines = [head]
    for sampler, p, s in rows:
        name = {"lean": "ResumableDistributedSampler", "plain": "torch DistributedSampler"}[sampler]
        lines.append((f"{p['corpus_mb']:.0f} MB", name, f"{p['tokens']/1e6:.1f}M", str(p["shards"]), f"{p['seconds']:.1f}",
                      f"{p['corpus_mb']/p['seconds']:.1f}", f"{p['parent_peak_mb']:.0f} / {p['worker_peak_mb']:.0f}", f"{s['windows']:,}",
                      f"{s['seconds']:.1f}", f"{s['peak']['VmHWM']:.0f}", f"{s['peak']['RssAnon']:.0f}", f"{s['peak']['RssFile']:.0f}",
                      f"{s['base']['RssAnon']:.0f}"))
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    for k, r in enumerate(lines):
        print("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |")
        if k == 0: print("|" + "|".join("-"*(w + 2) for w in widths) + "|")


if __name__ == "__main__":
    main()
