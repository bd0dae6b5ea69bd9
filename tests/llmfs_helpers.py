"How the command-line tests run `llmfs`: as a separate process, offline."
import os
import subprocess
import sys

LLMFS = [sys.executable, "-m", "llm_from_scratch"]
FAST = ["--config", "tiny", "--eval-freq", "20", "--eval-iter", "2", "--no-fast-linear"]  # a few seconds; the same kernels in every process


def llmfs(*args, timeout=600, **kwargs):
    "Run `llmfs` with `args` in a new process; returns the CompletedProcess (text output captured)."
    return subprocess.run([*LLMFS, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)


def env_with(**changes):
    "This process's environment with `changes`, for a child process."
    return {**os.environ, **changes}


def one_line_error(r, message):
    "The command failed with exit status 2 and exactly one line on stderr (besides `llmfs: warning:` lines), containing `message`."
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("llmfs: warning:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr


def auto_weights_dtype():
    "The weights' dtype that `--dtype auto` gives generate, chat and serve on this CPU: bfloat16 where measured fast, else None (the loader's)."
    import torch
    from llm_from_scratch.engine.cli import _weights_dtype
    return _weights_dtype("auto", torch.device("cpu"))


def copy_run(src, dst):
    "A copy of the checkpoint folder `src` in `dst` (its files only)."
    for f in src.iterdir(): (dst / f.name).write_bytes(f.read_bytes())
    return dst
