"How the command-line tests run `llmfs`: as a separate process, offline."
import subprocess
import sys

LLMFS = [sys.executable, "-m", "llm_from_scratch"]
FAST = ["--config", "tiny", "--eval-freq", "20", "--eval-iter", "2", "--no-fast-linear"]  # a few seconds; the same kernels in every process


def llmfs(*args, timeout=600, **kwargs):
    "Run `llmfs` with `args` in a new process; returns the CompletedProcess (text output captured)."
    return subprocess.run([*LLMFS, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)
