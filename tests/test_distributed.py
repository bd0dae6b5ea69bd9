"`llmfs pretrain` under torchrun: 2 CPU processes (Gloo) against one, with DDP and FSDP, interrupted and resumed on 2 or on 1."
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llmfs_helpers import FAST, llmfs

ARGS = [*FAST, "--batch-size", "4"]  # 4 windows a step: 2 in each of the 2 processes; 18 steps an epoch, no dropout
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


EXIT_ABORT = "terminate called without an active exception"   # C++ std::terminate in a process, as it ended


def torchrun(*args, nproc=2, launch=("--standalone",), timeout=300, **kwargs):
    "Run `llmfs` in `nproc` processes launched by torchrun; returns the CompletedProcess (a second one after an abort at exit)."
    run = lambda: subprocess.run([*TORCHRUN, *launch, f"--nproc_per_node={nproc}", "-m", "llm_from_scratch", *map(str, args)],
                                 capture_output=True, text=True, timeout=timeout, **kwargs)
    resumed = Path(args[list(args).index("--resume") + 1]) if "--resume" in args else None
    if resumed is not None:   # the checkpoint as it is, so that a crashed resume can start again from it
        kept = Path(tempfile.mkdtemp()) / "kept"
        shutil.copytree(resumed, kept)
    r = run()
    # Seen once in four runs of the whole suite on a loaded 2-core CPU (torch 2.13, Gloo, FSDP): after the epoch's last
    # step, one process died of std::terminate (SIGABRT); once more in a later run (AMD EPYC Zen 4), a process died of
    # SIGSEGV in the same FSDP test; and on 2026-12-08 in a --resume of that test, on the loaded Xeon. Its cause is not
    # found yet (pytorch/pytorch#179291 describes Gloo's threads crashing so at interpreter exit); until it is, a run
    # that ends so is repeated once, from an empty --out or from the checkpoint it resumed, and a second crash fails.
    crashed = EXIT_ABORT in r.stderr or "(SIGSEGV)" in r.stderr
    if r.returncode != 0 and crashed and ("--out" in args or resumed is not None):
        if "--out" in args: shutil.rmtree(args[list(args).index("--out") + 1], ignore_errors=True)
        if resumed is not None:
            shutil.rmtree(resumed, ignore_errors=True)
            shutil.copytree(kept, resumed)
        print("torchrun: a process crashed (std::terminate or SIGSEGV); running it once more", file=sys.stderr)
        r = run()
    if resumed is not None: shutil.rmtree(kept.parent, ignore_errors=True)
    return r


def difference(a, b):
    "The largest difference between two checkpoints' weights."
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    "One process, the same global batch, 2 epochs."
    out = tmp_path_factory.mktemp("single")
    r = llmfs("pretrain", *ARGS, "--epochs", 2, "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    "2 processes with DDP, 2 epochs."
    out = tmp_path_factory.mktemp("ddp")
    r = torchrun("pretrain", *ARGS, "--epochs", 2, "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


def test_ddp_on_two_processes_ends_where_one_process_does(single, ddp):
    (one, r1), (two, r2) = single, ddp
    assert 0 < difference(one, two) < 1e-4   # the same steps, the sums taken in another order
    assert "on 2 processes (DDP, cpu)" in r2.stdout
    evaluations = [line for line in r1.stdout.splitlines() if line.startswith("Ep ")]
    assert [line for line in r2.stdout.splitlines() if line.startswith("Ep ")] == evaluations   # rank 0 alone logs: the same losses, once
    assert r2.stdout.count("Done: 2 epochs") == 1 and r2.stdout.count("Every effort moves you") == 2
    assert torch.load(two / "training_state.pt", weights_only=True)["state"]["tokens_seen"] == \
        torch.load(one / "training_state.pt", weights_only=True)["state"]["tokens_seen"]   # tokens of all processes


def test_fsdp_checkpoints_are_whole_and_resume_sharded_or_on_one_process(single, tmp_path):
    fsdp = tmp_path / "fsdp"
    r = torchrun("pretrain", *ARGS, "--fsdp", "--epochs", 1, "--out", fsdp)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "on 2 processes (FSDP, cpu)" in r.stdout and "6.5M-parameter" in r.stdout
    on_one = tmp_path / "on_one"
    shutil.copytree(fsdp, on_one)
    r = torchrun("pretrain", "--resume", fsdp, "--fsdp", "--epochs", 2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert difference(fsdp, single[0]) < 1e-4
    r = llmfs("pretrain", "--resume", on_one, "--epochs", 2)   # the gathered optimizer state loads into a plain AdamW
    assert r.returncode == 0, r.stderr
    assert difference(on_one, single[0]) < 1e-4
    r = llmfs("generate", "--checkpoint", fsdp, "--prompt", "Every effort", "--max-new-tokens", 3)
    assert r.returncode == 0 and r.stdout.startswith("Every effort"), r.stderr


def test_interrupted_under_torchrun_resumes_exactly(ddp, single, tmp_path):
    part = tmp_path / "part"
    proc = subprocess.Popen([*TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", "llm_from_scratch", "pretrain", *ARGS,
                             "--epochs", "2", "--out", str(part)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # the first evaluation line: training has started
        if line.startswith("Ep 1"): break
    proc.send_signal(signal.SIGINT)  # Ctrl-C: torchrun passes it on to both processes
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert err.count("Stopping after this step") == 1 and "Interrupted at step" in err, err[-3000:]   # said once, by rank 0
    assert 0 < torch.load(part / "training_state.pt", weights_only=True)["state"]["batch"] < 18   # stopped mid-epoch
    on_one = tmp_path / "on_one"
    shutil.copytree(part, on_one)
    r = torchrun("pretrain", "--resume", part, "--epochs", 2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert difference(part, ddp[0]) == 0   # the same processes, the same sums: bit for bit
    r = llmfs("pretrain", "--resume", on_one, "--epochs", 2)   # 2 processes' checkpoint, resumed on one: the same global batch
    assert r.returncode == 0, r.stderr
    assert difference(on_one, single[0]) < 1e-4


def test_two_machines_through_the_c10d_rendezvous(ddp, tmp_path):
    "Two torchrun launches of 1 process each, joined as 2 nodes on this machine, as on 2 real machines."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    out = tmp_path / "nodes"
    def node(rank):
        return subprocess.Popen([*TORCHRUN, "--nnodes=2", f"--node_rank={rank}", "--nproc_per_node=1", "--rdzv-backend=c10d",
                                 f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=test", "-m", "llm_from_scratch", "pretrain", *ARGS,
                                 "--epochs", "2", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    nodes = [node(0), node(1)]
    results = [p.communicate(timeout=300) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], results[0][1][-2000:] + results[1][1][-2000:]
    assert sum("Done: 2 epochs" in o for o, _ in results) == 1   # one log, from the process of rank 0
    assert difference(out, ddp[0]) < 1e-4


def test_a_batch_that_does_not_split_is_refused_in_one_line(tmp_path):
    r = torchrun("pretrain", *FAST, "--batch-size", 3, "--epochs", 1, "--out", tmp_path / "x")
    assert r.returncode != 0
    ours = r.stderr.split("Traceback")[0]   # before torchrun's own report of the failed processes
    assert "llmfs: error: --batch-size 3 (the batch of all processes together) does not split evenly over 2 processes" in ours
    assert not (tmp_path / "x").exists()


def test_gradient_accumulation_exchanges_once_a_step_and_ends_where_one_process_does(tmp_path):
    "With --grad-accum 3 the first two micro-batches skip the exchange (no_sync): the steps are still one process's steps."
    one, two = tmp_path / "one", tmp_path / "two"
    r = llmfs("pretrain", *ARGS, "--grad-accum", 3, "--epochs", 1, "--out", one)
    assert r.returncode == 0, r.stderr
    r = torchrun("pretrain", *ARGS, "--grad-accum", 3, "--epochs", 1, "--out", two)
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(two / "training_state.pt", weights_only=True)["state"]["step"] == 5   # 18 batches: 6 steps of 3
    assert 0 < difference(one, two) < 1e-4


def test_fsdp_needs_torchrun_and_refuses_fp16(tmp_path):
    r = llmfs("pretrain", *FAST, "--fsdp", "--epochs", 1, "--out", tmp_path / "x")
    assert r.returncode == 2 and "--fsdp shards the model over processes launched by torchrun" in r.stderr
    assert not (tmp_path / "x").exists()
