"""Faults and bad inputs: each gets one clear line (or a documented behaviour), and nothing is lost or half written.

Each test reproduces one fault from the reliability issue; the command-line ones run `llmfs` as a separate process,
offline, on the tiny config.
"""
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from llm_from_scratch.pretraining import CheckpointError
from llm_from_scratch.engine.checkpoints import load_training_state
from llm_from_scratch.pretrained_weights import load_gpt2, mmap_safetensors
from llm_from_scratch.text_data import DataFile, DownloadError, atomic_write, download

from llmfs_helpers import FAST, llmfs


def env_with(**changes):
    "This process's environment with `changes`, for a child process."
    return {**os.environ, **changes}


def one_line_error(r, message):
    "The command failed with exit status 2 and exactly one line on stderr (besides `llmfs: warning:` lines), containing `message`."
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("llmfs: warning:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr


# ---- downloads

@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    "An empty cache folder of its own and no mirror."
    monkeypatch.setenv("LLM_FROM_SCRATCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LLM_FROM_SCRATCH_DATA", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def short_body_server():
    "A local HTTP server that announces 100 bytes and sends 50."
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 50)
        def log_message(self, *args): pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/file.txt"
    server.shutdown()


def test_a_truncated_download_is_an_error_and_is_never_cached(offline_cache, short_body_server):
    with pytest.raises(DownloadError) as e:
        download(DataFile("site/file.txt", (short_body_server,)), progress=False)
    assert "file.txt" in str(e.value) and "50" in str(e.value)
    assert not (offline_cache / "site" / "file.txt").exists()
    assert list((offline_cache / "site").glob("*")) == []   # no temporary file either


def test_leftovers_of_a_killed_download_are_removed_on_the_next_run(offline_cache, tmp_path):
    (tmp_path / "src.txt").write_text("hello")
    (offline_cache / "site").mkdir(parents=True)
    stale = offline_cache / "site" / ".file.txt.abc123.part"
    stale.write_text("half a down")
    an_hour_ago = stale.stat().st_mtime - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))   # a live download (in another process) writes its file all the time
    path = download(DataFile("site/file.txt", ((tmp_path / "src.txt").as_uri(),)), progress=False)
    assert path.read_text() == "hello" and not stale.exists()


@pytest.mark.parametrize("name", ["../outside.txt", "a/../../outside.txt", "/etc/passwd", ""])
def test_a_data_file_name_cannot_leave_the_data_folder(name):
    with pytest.raises(ValueError, match="relative path inside the data folder"): DataFile(name, ("file:///x",))


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.txt", "w") as f: f.write("x")
        os.umask(0o077)
        with atomic_write(tmp_path / "b.txt", "w") as f: f.write("x")
    finally: os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600


# ---- corrupt inputs

def test_safetensors_offsets_that_disagree_with_the_shape_are_refused(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 32]}}).encode()
    (tmp_path / "bad.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(64))
    with pytest.raises(CheckpointError, match="'w' of shape \\(4, 4\\).*needs 64 bytes"): mmap_safetensors(tmp_path / "bad.safetensors")


class Boom:
    def __reduce__(self): return (os.system, ("echo pwned",))


def test_a_malicious_pickle_is_refused_without_advice_to_trust_it(tmp_path):
    torch.save({"state": Boom()}, tmp_path / "training_state.pt")
    with pytest.raises(CheckpointError) as e: load_training_state(tmp_path)
    assert "training_state.pt" in str(e.value) and "weights_only" not in str(e.value), e.value  # not PyTorch's advice
    torch.save({"tok_emb.weight": Boom()}, tmp_path / "model.pth")
    with pytest.raises(CheckpointError) as e: load_gpt2(tmp_path / "model.pth")
    assert "model.pth" in str(e.value) and "weights_only" not in str(e.value), e.value


def test_a_pth_missing_a_tensor_names_it(tmp_path):
    from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
    sd = GPTModel({**GPT_CONFIG_TINY, "qkv_bias": True}).state_dict()
    del sd["trf_blocks.1.ff.layers.2.bias"]
    torch.save(sd, tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match="trf_blocks.1.ff.layers.2.bias"):
        load_gpt2(tmp_path / "model.pth", cfg={**GPT_CONFIG_TINY, "qkv_bias": True})


# ---- the command line: every argument checked up front, one line each

@pytest.mark.parametrize("args, message", [
    (["pretrain", *FAST, "--batch-size", "0"], "--batch-size must be at least 1, not 0"),
    (["pretrain", *FAST, "--batch-size", "-1"], "--batch-size must be at least 1, not -1"),
    (["pretrain", *FAST, "--lr", "0"], "--lr must be a positive number, not 0.0"),
    (["pretrain", *FAST, "--lr", "inf"], "--lr must be a positive number"),
    (["pretrain", *FAST, "--eval-freq", "0"], "--eval-freq must be at least 1, not 0"),
    (["pretrain", *FAST, "--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["generate", "--checkpoint", "x", "--prompt", "Hi", "--temperature", "nan"], "--temperature must be a finite number >= 0"),
    (["generate", "--checkpoint", "x", "--prompt", "Hi", "--temperature", "inf"], "--temperature must be a finite number >= 0"),
    (["generate", "--checkpoint", "x", "--prompt", "Hi", "--max-new-tokens", "-5"], "--max-new-tokens must be at least 0, not -5"),
    (["generate", "--checkpoint", "x", "--prompt", "Hi", "--top-k", "0"], "--top-k must be at least 1, not 0"),
    (["pretrain", *FAST, "--device", "tpu"], "--device tpu"),
    (["pretrain", *FAST, "--seed", str(2**64)], "--seed must be between 0 and 2**63 - 1"),
    (["generate", "--checkpoint", "x", "--prompt", "Hi", "--seed", "-1"], "--seed must be between 0 and 2**63 - 1"),
])
def test_bad_arguments_are_refused_before_anything_loads(args, message, tmp_path):
    one_line_error(llmfs(*args, cwd=tmp_path, timeout=120), message)
    assert list(tmp_path.iterdir()) == []   # nothing written


def test_out_must_be_a_writable_folder(tmp_path):
    (tmp_path / "a_file").write_text("x")
    one_line_error(llmfs("pretrain", *FAST, "--out", tmp_path / "a_file"), "is a file, not a folder")
    one_line_error(llmfs("pretrain", *FAST, "--out", tmp_path / "a_file" / "run"), "is not a writable folder")
    one_line_error(llmfs("pretrain", *FAST, "--out", "/proc/llmfs-run"), "is not a writable folder")


def test_generate_gpt2_offline_says_where_weights_can_come_from(tmp_path):
    r = llmfs("generate", "--model", "gpt2", "--prompt", "Hi", env=env_with(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf")))
    one_line_error(r, "Could not get gpt2")
    assert "HF_HUB_OFFLINE" in r.stderr and "local folder" in r.stderr


# ---- runs are never lost or silently overwritten

def test_a_new_run_never_replaces_a_finished_one(full_run, tmp_path):
    finished = full_run[0]
    before = (finished / "model.safetensors").read_bytes()
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--out", finished)
    one_line_error(r, "already holds a checkpoint")
    assert "--resume" in r.stderr and "--overwrite" in r.stderr
    assert (finished / "model.safetensors").read_bytes() == before
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in finished.iterdir(): (copy / f.name).write_bytes(f.read_bytes())
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--seed", 7, "--out", copy, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert (copy / "model.safetensors").read_bytes() != before



def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(full_run, tmp_path):
    "--overwrite removed the finished run first; a new run that failed in its first epoch then left the folder empty."
    for f in full_run[0].iterdir(): (tmp_path / f.name).write_bytes(f.read_bytes())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--lr", "1e6", "--out", tmp_path, "--overwrite")
    assert r.returncode == 1 and "training stopped" in r.stderr and "is kept" in r.stderr, r.stderr[-1500:]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before   # the old run, whole
    (tmp_path / "adapters.json").write_text("{}")   # a file of an older run of another kind
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--seed", 7, "--out", tmp_path, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "adapters.json").exists() and (tmp_path / "loss.png").read_bytes() != before["loss.png"]

def test_a_resume_checks_the_weights_and_keeps_the_runs_settings(full_run, tmp_path):
    finished = full_run[0]
    for f in finished.iterdir(): (tmp_path / f.name).write_bytes(f.read_bytes())
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3, "--eval-freq", 7), "--eval-freq 7 differs from the resumed run's 20")
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3, "--config", "small"), "--config small differs from the resumed run's tiny")
    r = llmfs("pretrain", "--resume", tmp_path, "--epochs", 2, "--config", "tiny")   # the run's own config: accepted
    assert r.returncode == 0 and "has already trained 2 epochs" in r.stdout, r.stderr
    data = bytearray((tmp_path / "model.safetensors").read_bytes()); data[-7] ^= 1
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3), "model.safetensors does not match manifest.json")


def test_a_resume_missing_a_state_key_is_refused(full_run, tmp_path):
    finished = full_run[0]
    for f in finished.iterdir(): (tmp_path / f.name).write_bytes(f.read_bytes())
    saved = torch.load(tmp_path / "training_state.pt", weights_only=True)
    del saved["state"]["epoch_rng"]
    torch.save(saved, tmp_path / "training_state.pt")
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3), "training_state.pt does not match manifest.json")
    (tmp_path / "manifest.json").unlink()   # as a checkpoint written before manifests: the contents are checked
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3), "lacks state.epoch_rng")


def test_a_resume_with_a_damaged_state_field_is_refused(full_run, tmp_path):
    "TrainState.from_dict checks every field: a hand-edited epoch is one line naming it, not a crash later."
    finished = full_run[0]
    for f in finished.iterdir(): (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "manifest.json").unlink()   # no manifest to catch the edit first
    saved = torch.load(tmp_path / "training_state.pt", weights_only=True)
    saved["state"]["epoch"] = "one"
    torch.save(saved, tmp_path / "training_state.pt")
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3), "state.epoch is 'one': it must be an integer >= 0")



def rewrite_state(folder, change):
    "Apply `change` to a checkpoint's training_state.pt and record the new file in its manifest, as a careful forger would."
    import hashlib
    saved = torch.load(folder / "training_state.pt", weights_only=True)
    change(saved)
    torch.save(saved, folder / "training_state.pt")
    manifest = json.loads((folder / "manifest.json").read_text())
    data = (folder / "training_state.pt").read_bytes()
    manifest["files"]["training_state.pt"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def one_element_moments(saved):
    for entry in saved["optimizer"]["state"].values(): entry["exp_avg"] = entry["exp_avg_sq"] = torch.zeros(1)


def cut_first_moment(saved):
    first = saved["optimizer"]["state"][0]
    first["exp_avg"] = first["exp_avg"][:5].clone()   # tok_emb's (50257, 64) cut to (5, 64)


@pytest.mark.parametrize("change, message", [
    (one_element_moments, "the optimizer's exp_avg for tok_emb.weight has shape (1,)"),
    (cut_first_moment, "the optimizer's exp_avg for tok_emb.weight has shape (5, 64)")])
def test_a_crafted_optimizer_state_is_refused_naming_the_tensor(full_run, tmp_path, change, message):
    "One-element AdamW moments crashed the fused step (exit 139); a cut one trained an epoch and was saved again."
    finished = full_run[0]
    for f in finished.iterdir(): (tmp_path / f.name).write_bytes(f.read_bytes())
    rewrite_state(tmp_path, change)
    before = (tmp_path / "training_state.pt").read_bytes()
    r = llmfs("pretrain", "--resume", tmp_path, "--epochs", 3)
    one_line_error(r, message)
    assert (tmp_path / "training_state.pt").read_bytes() == before   # nothing trained, nothing saved

def test_a_resumed_run_does_not_download_its_recorded_urls(tmp_path):
    text = (tmp_path / "story.txt")
    text.write_text(open(os.environ.get("LLM_FROM_SCRATCH_DATA", "") + "/the-verdict.txt").read()
                    if os.environ.get("LLM_FROM_SCRATCH_DATA") else "word " * 20000)
    cache = tmp_path / "cache"
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--data", text.as_uri(), "--out", tmp_path / "run", env=env_with(LLM_FROM_SCRATCH_CACHE=str(cache)))
    assert r.returncode == 0, r.stderr
    # on another machine (an empty cache), the URL is not fetched again: the run asks for the text
    r = llmfs("pretrain", "--resume", tmp_path / "run", "--epochs", 2, env=env_with(LLM_FROM_SCRATCH_CACHE=str(tmp_path / "other")))
    one_line_error(r, "not in this machine's cache")
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").rglob("story.txt"))
    r = llmfs("pretrain", "--resume", tmp_path / "run", "--epochs", 2, "--data", text, env=env_with(LLM_FROM_SCRATCH_CACHE=str(tmp_path / "other")))
    assert r.returncode == 0, r.stderr


# ---- checkpoints are all or nothing

KILLED_SAVE = """
import os, sys, torch
from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
from llm_from_scratch.engine.checkpoints import save_checkpoint
folder, kill_at = sys.argv[1], int(sys.argv[2])
torch.manual_seed(2)
model = GPTModel(GPT_CONFIG_TINY)
real_replace, renames = os.replace, [0]
def replace(src, dst):
    renames[0] += 1
    if renames[0] == kill_at: os._exit(137)   # as if killed (SIGKILL) just before this rename
    real_replace(src, dst)
os.replace = replace
save_checkpoint(folder, model, torch.optim.AdamW(model.parameters()), {"step": 2})
print(renames[0])
"""


def tiny_checkpoint(folder, seed, step):
    "A checkpoint of a tiny model of `seed`, with `state['step'] == step`; returns the weights file's bytes."
    from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
    from llm_from_scratch.engine.checkpoints import save_checkpoint
    torch.manual_seed(seed)
    model = GPTModel(GPT_CONFIG_TINY)
    save_checkpoint(folder, model, torch.optim.AdamW(model.parameters()), {"step": step})
    return (folder / "model.safetensors").read_bytes()


def test_a_save_killed_at_any_rename_leaves_the_old_or_the_new_checkpoint(tmp_path):
    from llm_from_scratch.engine.checkpoints import load_model, load_training_state, recover_checkpoint
    old = tiny_checkpoint(tmp_path / "old", seed=1, step=1)
    new = tiny_checkpoint(tmp_path / "new", seed=2, step=2)
    done = subprocess.run([sys.executable, "-c", KILLED_SAVE, tmp_path / "count", "0"], capture_output=True, text=True)
    renames = int(done.stdout)   # how many renames a whole save makes
    assert renames >= 5
    outcomes = {"over a checkpoint": [], "into an empty folder": []}
    for kill_at in range(1, renames + 1):
        for start, steps in outcomes.items():
            folder = tmp_path / f"{kill_at}-{start.replace(' ', '-')}"
            folder.mkdir()
            if start == "over a checkpoint":
                for f in (tmp_path / "old").iterdir(): (folder / f.name).write_bytes(f.read_bytes())
            r = subprocess.run([sys.executable, "-c", KILLED_SAVE, folder, str(kill_at)], capture_output=True, text=True)
            assert r.returncode == 137, r.stderr
            try:
                load_model(folder)   # every file checked against the manifest
                step = load_training_state(folder)["state"]["step"]
            except CheckpointError as e:   # killed before the first save's commit point: no checkpoint at all
                assert start == "into an empty folder" and "is not a checkpoint folder" in str(e), (kill_at, start, e)
                step = 0
            recover_checkpoint(folder)   # what the next save does first
            assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], (kill_at, start)   # no leftovers
            if step: assert (folder / "model.safetensors").read_bytes() == {1: old, 2: new}[step], (kill_at, start)
            steps.append(step)
    assert outcomes["over a checkpoint"][0] == 1 and outcomes["over a checkpoint"][-1] == 2, outcomes
    assert outcomes["into an empty folder"][0] == 0 and outcomes["into an empty folder"][-1] == 2, outcomes
    assert set(outcomes["over a checkpoint"]) == {1, 2} and set(outcomes["into an empty folder"]) == {0, 2}


def test_flipped_bytes_or_a_foreign_file_are_refused(tmp_path):
    from llm_from_scratch.engine.checkpoints import load_model, load_training_state
    tiny_checkpoint(tmp_path / "a", seed=1, step=1)
    tiny_checkpoint(tmp_path / "b", seed=2, step=2)
    (tmp_path / "a" / "training_state.pt").write_bytes((tmp_path / "b" / "training_state.pt").read_bytes())
    with pytest.raises(CheckpointError, match="training_state.pt does not match manifest.json"): load_training_state(tmp_path / "a")
    data = bytearray((tmp_path / "b" / "model.safetensors").read_bytes()); data[-3] ^= 1
    (tmp_path / "b" / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors does not match manifest.json"): load_model(tmp_path / "b")


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_previous_checkpoint(full_run, tmp_path):
    finished = full_run[0]
    for f in finished.iterdir(): (tmp_path / f.name).write_bytes(f.read_bytes())
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    script = ("import errno, sys, torch\n"
              "def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')\n"
              "torch.save = full\n"
              "from llm_from_scratch.engine.cli import main\n"
              f"raise SystemExit(main(['pretrain', '--resume', {str(tmp_path)!r}, '--epochs', '3']))")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("llmfs: error")]
    assert errors == [f"llmfs: error: could not write the checkpoint in {tmp_path}: No space left on device; "
                      f"the last complete checkpoint in {tmp_path} is kept"], r.stderr
    assert "Traceback" not in r.stderr
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before



@pytest.mark.parametrize("patch", [
    "import safetensors, safetensors.torch\n"
    "def full(tensors, path, metadata=None):\n"
    "    open(os.path.join(os.path.dirname(path), '.tmpAbC123'), 'wb').write(b'x' * 1000)   # what safetensors leaves\n"
    "    raise safetensors.SafetensorError('Error while serializing: IoError(No space left on device (os error 28))')\n"
    "safetensors.torch.save_file = full\n",
    "import torch\n"
    "def full(*a, **k): raise RuntimeError('[enforce fail at inline_container.cc:664] . unexpected pos 1216 vs 1164')\n"
    "torch.save = full\n"])
def test_a_full_disk_as_safetensors_or_torch_report_it_is_one_line(full_run, tmp_path, patch):
    "safetensors' SafetensorError and torch.save's RuntimeError are not OSErrors: they were tracebacks, and left a .tmpXXXXXX."
    for f in full_run[0].iterdir(): (tmp_path / f.name).write_bytes(f.read_bytes())
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    script = ("import os\n" + patch + "from llm_from_scratch.engine.cli import main\n"
              f"raise SystemExit(main(['pretrain', '--resume', {str(tmp_path)!r}, '--epochs', '3']))")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("llmfs: error")]
    assert len(errors) == 1 and errors[0].startswith(f"llmfs: error: could not write the checkpoint in {tmp_path}: "), r.stderr
    assert errors[0].endswith(f"the last complete checkpoint in {tmp_path} is kept") and "Traceback" not in r.stderr, r.stderr
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before   # no leftovers

def test_non_finite_evaluation_losses_stop_training(tmp_path):
    from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
    from llm_from_scratch.pretraining import NonFiniteLossError
    from llm_from_scratch.engine import trainer
    torch.manual_seed(0)
    model = GPTModel(GPT_CONFIG_TINY)
    with torch.no_grad(): model.tok_emb.weight[7] = float("nan")   # token 7 breaks the model; training never sees it
    train = [(x, x) for x in torch.randint(100, 50257, (3, 2, 16))]
    val = [(torch.full((2, 16), 7), torch.full((2, 16), 7))]
    with pytest.raises(NonFiniteLossError, match="evaluation losses are .* and nan"):
        trainer.train(model, train, val, torch.optim.SGD(model.parameters(), lr=0.0), "cpu", 1, 1, 1, log=lambda *a: None)


def test_a_checkpoint_is_never_written_with_non_finite_weights(tmp_path):
    from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
    from llm_from_scratch.pretraining import NonFiniteLossError
    from llm_from_scratch.engine import trainer
    torch.manual_seed(0)
    model = GPTModel(GPT_CONFIG_TINY)
    with torch.no_grad(): model.pos_emb.weight[63] = float("inf")   # a position these 16-token batches never reach
    batches = [(x, x) for x in torch.randint(0, 50257, (3, 2, 16))]
    with pytest.raises(NonFiniteLossError, match="weights hold nan or infinite values"):
        trainer.train(model, batches, batches, torch.optim.SGD(model.parameters(), lr=0.0), "cpu", 1, 100, 1,
                    log=lambda *a: None, checkpoint_dir=tmp_path)
    assert not (tmp_path / "model.safetensors").exists()


def test_a_corrupt_file_in_the_hub_cache_is_refused(tmp_path):
    "The Hugging Face cache links each large file to a blob named by its SHA-256: a damaged blob is caught."
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_positions=64, n_embd=64, n_layer=2, n_head=4)).save_pretrained(tmp_path / "src")
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshot"
    blobs.mkdir(); snapshot.mkdir()
    data = (tmp_path / "src" / "model.safetensors").read_bytes()
    import hashlib
    blob = blobs / hashlib.sha256(data).hexdigest()
    blob.write_bytes(data)
    (snapshot / "model.safetensors").symlink_to(blob)
    (snapshot / "config.json").write_text((tmp_path / "src" / "config.json").read_text())
    load_gpt2(snapshot)   # intact: loads
    damaged = bytearray(data); damaged[-10] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="does not match the SHA-256 that the Hugging Face hub gave"): load_gpt2(snapshot)


def test_a_diverged_classifier_is_never_saved_nor_praised(full_run, tmp_path):
    "--lr 1e9 made finetune-classifier exit 0 with 100% accuracy printed and 17 NaN tensors saved; now one line, nothing written."
    r = llmfs("finetune-classifier", "--checkpoint", full_run[0], "--lr", "1e9", "--epochs", 1, "--out", tmp_path / "clf", "--no-fast-linear")
    assert r.returncode == 1, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    errors = [line for line in r.stderr.splitlines() if "llmfs: error:" in line]   # (after a progress bar's carriage returns)
    assert len(errors) == 1 and ("nan" in errors[0] or "infinite" in errors[0]) and "Nothing was written" in errors[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "Accuracy" not in r.stdout
    assert not (tmp_path / "clf" / "model.safetensors").exists()


# ---- round 2: one line where a traceback was

def copy_run(src, dst):
    for f in src.iterdir(): (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize("change, message", [
    ({"drop_rate": "abc"}, "drop_rate must be a number in [0, 1), not 'abc'"),
    ({"drop_rate": None}, "drop_rate must be a number in [0, 1), not None"),
    ({"vocab_size": True}, "vocab_size must be a positive integer, not True"),
    ({"qkv_bias": "no"}, "qkv_bias must be true or false, not 'no'"),
    ({"context_length": 10**12}, "context_length 1,000,000,000,000 is too long")])
def test_a_config_of_the_wrong_kind_is_one_line(full_run, tmp_path, change, message):
    copy_run(full_run[0], tmp_path)
    (tmp_path / "manifest.json").unlink()   # a hand-edited folder, as before manifests
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
    one_line_error(llmfs("generate", "--checkpoint", tmp_path, "--prompt", "Hi", "--max-new-tokens", 2), message)


def test_an_empty_data_file_is_one_line(full_run, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    one_line_error(llmfs("finetune-classifier", "--checkpoint", full_run[0], "--data", tmp_path / "empty.csv", "--out", tmp_path / "clf"),
                   "the file is empty")


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_serve_refuses_a_port_out_of_range(full_run, port):
    pytest.importorskip("fastapi")
    one_line_error(llmfs("serve", "--checkpoint", full_run[0], "--port", port), f"--port must be from 0 (any free port) to 65535, not {port}")


def test_a_resume_with_a_damaged_generator_state_is_refused(full_run, tmp_path):
    "A 3-byte RNG state was refused by torch only after the model had loaded, as a traceback."
    copy_run(full_run[0], tmp_path)
    (tmp_path / "manifest.json").unlink()
    saved = torch.load(tmp_path / "training_state.pt", weights_only=True)
    saved["state"]["rng"]["cpu"] = torch.zeros(3, dtype=torch.uint8)
    torch.save(saved, tmp_path / "training_state.pt")
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3), "state.rng is not a random generator state")


@pytest.fixture
def judge_replying():
    "A server that answers every request with the bytes it is given; its chat URL."
    reply = {}
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self): self.do_POST()
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
            self.wfile.write(reply["body"])
        def log_message(self, *args): pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    def url(body):
        reply["body"] = body
        return f"http://127.0.0.1:{server.server_address[1]}"
    yield url
    server.shutdown()


@pytest.mark.parametrize("body, path, message", [
    (b"\xff\xfe not utf-8\n", "/api/chat", "sent bytes that are not UTF-8 text"),
    (b'{"message": "87"}\n', "/api/chat", "sent JSON that is not a chat reply"),
    (b'data: {"choices": ["x"]}\n\n', "/v1/chat/completions", "sent JSON that is not a chat reply"),
    (b'{"message": {"content": 87}}\n', "/api/chat", "sent JSON that is not a chat reply")])
def test_a_judge_that_answers_garbage_is_one_line(judge_replying, body, path, message):
    from llm_from_scratch.instruction_tuning import JudgeError, query_model
    with pytest.raises(JudgeError, match=message): query_model("Score this.", url=judge_replying(body) + path)


def test_a_judge_whose_model_list_is_garbage_is_one_line(judge_replying):
    from llm_from_scratch.instruction_tuning import JudgeError, check_judge
    with pytest.raises(JudgeError, match="not as an Ollama or OpenAI-compatible server"): check_judge(url=judge_replying(b"[1, 2]") + "/api/chat")


def test_adapters_truncated_or_without_their_base_are_one_line(tmp_path):
    from llm_from_scratch.engine.checkpoints import load_adapted, save_checkpoint
    from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
    from llm_from_scratch.lora import replace_linear_with_lora, save_lora
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "base", GPTModel(GPT_CONFIG_TINY))
    model = GPTModel(GPT_CONFIG_TINY)
    for p in model.parameters(): p.requires_grad = False
    replace_linear_with_lora(model, rank=2, alpha=4)
    save_lora(tmp_path / "adapters", model, base_model=str(tmp_path / "base"))
    load_adapted(tmp_path / "adapters")   # whole: it loads
    data = (tmp_path / "adapters" / "adapters.safetensors").read_bytes()
    (tmp_path / "adapters" / "adapters.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="adapters.safetensors is corrupt or truncated"): load_adapted(tmp_path / "adapters")
    (tmp_path / "adapters" / "adapters.safetensors").write_bytes(data)
    (tmp_path / "base").rename(tmp_path / "moved")
    with pytest.raises(CheckpointError, match="names the base model .*base, which does not exist"): load_adapted(tmp_path / "adapters")


def test_a_checkpoint_without_its_manifest_is_used_with_a_warning(full_run, tmp_path):
    "With manifest.json deleted, flipped bytes loaded silently; now every command says the files go unchecked."
    copy_run(full_run[0], tmp_path)
    (tmp_path / "manifest.json").unlink()
    r = llmfs("generate", "--checkpoint", tmp_path, "--prompt", "Every effort", "--max-new-tokens", 3, "--temperature", 0)
    assert r.returncode == 0, r.stderr
    warnings_said = [line for line in r.stderr.splitlines() if line.startswith("llmfs: warning:")]
    assert len(warnings_said) == 1 and "has no manifest.json: its files are used unchecked" in warnings_said[0], r.stderr
    r = llmfs("generate", "--checkpoint", full_run[0], "--prompt", "Every effort", "--max-new-tokens", 3, "--temperature", 0)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


# ---- silent surprises (item 8), friction (items 12, 16, 17)

def test_dtype_applies_to_a_checkpoint_in_generate_chat_and_serve(full_run, monkeypatch, capsys):
    "`generate --dtype float16` on a checkpoint ran in float32 without a word; now the weights are in the dtype asked for."
    from llm_from_scratch.engine import cli
    from llm_from_scratch.engine.serve import load_served_model
    seen = []
    monkeypatch.setattr(cli, "print_stream", lambda model, *a, **k: seen.append(next(model.parameters()).dtype) or "")
    for dtype, expected in (("bfloat16", torch.bfloat16), ("auto", torch.float32)):
        assert cli.main(["generate", "--checkpoint", str(full_run[0]), "--prompt", "Every", "--dtype", dtype, "--no-fast-linear"]) == 0
        assert seen[-1] == expected
    served = load_served_model(full_run[0], dtype=torch.bfloat16)
    assert {p.dtype for p in served.model.parameters()} == {torch.bfloat16}


def test_classify_reads_standard_input_only_with_a_lone_dash(full_run):
    "`classify ... - extra` classified the literal text '-'."
    one_line_error(llmfs("classify", "--checkpoint", full_run[0], "-", "extra"), "'-' reads the texts from standard input: give it alone")


def test_prepare_data_skips_a_fifo_in_a_folder(tmp_path):
    "A FIFO in the data folder made prepare-data wait forever on its read."
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("Every effort moves you. " * 200)
    os.mkfifo(tmp_path / "data" / "pipe.txt")
    r = llmfs("prepare-data", tmp_path / "data", "--out", tmp_path / "shards", timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "shards" / "index.json").read_text())["num_files"] == 1


@pytest.mark.parametrize("damage", [
    lambda index: index["shards"][0].update(tokens="1,000"),
    lambda index: index["shards"][0].update(file="../../etc/passwd"),
    lambda index: index.update(shards={"a": 1}),
])
def test_a_damaged_shard_index_says_so(tmp_path, damage):
    "A corrupted index.json gave 'too short for --context-length ... Cannot specify ',' with 's''."
    from llm_from_scratch.engine.shards import ShardDataset, prepare_shards
    (tmp_path / "a.txt").write_text("Every effort moves you. " * 400)
    prepare_shards([tmp_path / "a.txt"], tmp_path / "shards", shard_tokens=500, workers=1, progress=False, log=lambda *a: None)
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    damage(index)
    (tmp_path / "shards" / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="index.json is damaged: its shards are not a list of"):
        ShardDataset(tmp_path / "shards", 16)
    r = llmfs("pretrain", *FAST, "--data", tmp_path / "shards", "--out", tmp_path / "run")
    one_line_error(r, "index.json is damaged")


def test_an_offline_hub_fails_at_once_in_words(tmp_path):
    "Without a network, huggingface_hub retried for 25 s (11 lines) before one line named LocalEntryNotFoundError."
    import socket
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]   # nothing listens there
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path / "hf"))
    for args in (["generate", "--model", "gpt2", "--prompt", "Hi"], ["chat", "--model", "Qwen/Qwen3-0.6B", "--prompt", "Hi"]):
        r = llmfs(*args, env=env)
        one_line_error(r, "this machine cannot reach the hub, and its cache has no copy")
        assert "Retrying" not in r.stderr


def test_ctrl_c_during_an_answer_stops_that_answer_not_the_chat(monkeypatch, capsys):
    from llm_from_scratch.engine import cli
    typed, answered = iter(["first", "second", ""]), []
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    def answer(message):
        if message == "first": raise KeyboardInterrupt
        answered.append(message)
    assert cli._converse(None, answer, "Chatting") == 0
    assert answered == ["second"] and "(answer stopped" in capsys.readouterr().out


def test_the_help_lists_each_command_once_and_states_the_decoding_rule(tmp_path):
    r = llmfs("--help")
    listed = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("    ") and line[4] != " "]   # the commands' list, one per line
    assert r.returncode == 0 and "{pretrain," not in r.stdout and listed.count("pretrain") == 1 and "serve" in listed, r.stdout
    assert "samples by default" in r.stdout and "decode greedily" in r.stdout
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--out", tmp_path / "run")
    assert r.returncode == 0 and "to 1 epoch" in r.stdout and "1 epochs" not in r.stdout, r.stdout


def test_chat_on_a_plain_gpt_suggests_finetuning_that_checkpoint(full_run):
    one_line_error(llmfs("chat", "--checkpoint", full_run[0], "--prompt", "Hi"),
                   f"llmfs finetune-instruct --checkpoint {full_run[0]} --out DIR")


# ---- downloads of user URLs (item 11)

@pytest.fixture
def text_server():
    "A local HTTP server of changeable pages: path -> (content type, body)."
    pages = {}
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            ctype, body = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args): pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", pages
    server.shutdown()


def test_a_web_page_in_place_of_a_text_is_refused_and_never_cached(text_server, tmp_path):
    "A 200 HTML error page was cached and trained on."
    base, pages = text_server
    pages["/story.txt"] = ("text/html; charset=utf-8", b"<html><body>Sign in to see this file</body></html>")
    env = env_with(LLM_FROM_SCRATCH_CACHE=str(tmp_path / "cache"))
    r = llmfs("pretrain", *FAST, "--data", f"{base}/story.txt", "--out", tmp_path / "run", env=env)
    one_line_error(r, "the server sent a web page (text/html), not story.txt")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_url_checksum_is_checked_and_refresh_data_downloads_again(text_server, tmp_path):
    "The cache was never refreshed, and nothing checked a user URL's bytes."
    base, pages = text_server
    story = ("Every effort moves you towards the story. " * 200).encode()
    pages["/story.txt"] = ("text/plain", story)
    env = env_with(LLM_FROM_SCRATCH_CACHE=str(tmp_path / "cache"))
    wrong = "0" * 64
    r = llmfs("pretrain", *FAST, "--data", f"{base}/story.txt#sha256={wrong}", "--out", tmp_path / "a", env=env)
    errors = [line for line in r.stderr.splitlines() if line.startswith("llmfs: error:")]   # (besides the download's progress bar)
    assert r.returncode == 2 and len(errors) == 1 and f"checksum mismatch: expected sha256 {wrong}" in errors[0], r.stderr
    one_line_error(llmfs("pretrain", *FAST, "--data", f"{base}/story.txt#sha256=xyz", "--out", tmp_path / "a", env=env),
                   "#sha256= must be followed by the file's 64 hex digits")
    digest = __import__("hashlib").sha256(story).hexdigest()
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--data", f"{base}/story.txt#sha256={digest}", "--out", tmp_path / "b", env=env)
    assert r.returncode == 0, r.stderr
    cached = [p for p in (tmp_path / "cache").rglob("story.txt")]
    assert len(cached) == 1 and cached[0].read_bytes() == story
    plain = f"{base}/story.txt"
    assert llmfs("pretrain", *FAST, "--epochs", 1, "--data", plain, "--out", tmp_path / "c", env=env).returncode == 0
    copy = [p for p in (tmp_path / "cache").rglob("story.txt") if p != cached[0]][0]
    pages["/story.txt"] = ("text/plain", story.replace(b"story", b"tale!"))
    assert llmfs("pretrain", *FAST, "--epochs", 1, "--data", plain, "--out", tmp_path / "d", env=env).returncode == 0
    assert copy.read_bytes() == story                       # the cached copy, as before
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--data", plain, "--refresh-data", "--out", tmp_path / "e", env=env)
    assert r.returncode == 0 and copy.read_bytes() == pages["/story.txt"][1], r.stderr


# ---- one text, one tokenisation (item 10)

def training_tokens(r):
    "The token count that `llmfs pretrain` prints for a text run."
    return int(r.stdout.split(" (")[2].split(" tokens;")[0].replace(",", ""))   # Training a ...-parameter GPT (...) on FILE (N tokens; ...


def test_a_literal_end_of_text_is_plain_text_unless_asked_and_prepare_data_agrees(tmp_path):
    "pretrain --data read a literal <|endoftext|> as the token and prepare-data as text: now both read text, --eot-in-data the token."
    from llm_from_scratch.text_data import get_tokenizer
    doc = "Every effort moves you.\n" * 150   # (a newline on each side of the literal: no merge across it)
    (tmp_path / "a.txt").write_text(doc + "<|endoftext|>" + doc)
    literal = len(get_tokenizer().encode("<|endoftext|>", disallowed_special=()))
    assert literal > 1
    plain = llmfs("pretrain", *FAST, "--epochs", 1, "--data", tmp_path / "a.txt", "--out", tmp_path / "plain")
    token = llmfs("pretrain", *FAST, "--epochs", 1, "--data", tmp_path / "a.txt", "--eot-in-data", "--out", tmp_path / "token")
    assert plain.returncode == 0 and token.returncode == 0, (plain.stderr, token.stderr)
    assert training_tokens(plain) == training_tokens(token) + literal - 1
    r = llmfs("prepare-data", tmp_path / "a.txt", "--out", tmp_path / "shards")
    assert r.returncode == 0, r.stderr
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    assert index["total_tokens"] == training_tokens(plain) + 1   # the same tokens, after the one <|endoftext|> it puts before each file
    r = llmfs("pretrain", "--resume", tmp_path / "token", "--epochs", 2)   # a resume keeps the run's rule
    assert r.returncode == 0 and training_tokens(r) == training_tokens(token), r.stderr
    one_line_error(llmfs("pretrain", "--resume", tmp_path / "plain", "--epochs", 2, "--eot-in-data"),
                   "--eot-in-data True differs from the resumed run's False")


def test_files_are_still_separated_by_the_token_and_text_without_literals_is_unchanged():
    from llm_from_scratch.engine.shards import SEPARATOR, encode_joined
    from llm_from_scratch.text_data import get_tokenizer
    tok = get_tokenizer()
    texts = ["Every effort moves you", " towards <|endoftext|> the end", "Second file."]
    joined = SEPARATOR.join(texts)
    for a, b in ((0, len(joined)), (0, 30), (5, 60), (22, 30), (24, len(joined)), (len(joined), len(joined))):
        assert encode_joined(texts, a, b, tok, literal_eot=True) == tok.encode(joined[a:b], allowed_special={SEPARATOR})
    ids = encode_joined(texts, 0, len(joined), tok)
    assert ids.count(tok.eot_token) == 2 and tok.decode(ids) == joined           # the two joins, not the literal inside the text
    plain_texts = ["Every effort moves you", "Second file."]
    assert encode_joined(plain_texts, 0, 40, tok) == tok.encode(SEPARATOR.join(plain_texts)[:40], allowed_special={SEPARATOR})


def test_prompts_and_messages_are_plain_text(full_run, serve_models, monkeypatch):
    "chat --prompt made a typed <|endoftext|> the token, while serve read it as text."
    from llm_from_scratch.engine import cli
    seen = []
    monkeypatch.setattr(cli, "print_stream", lambda model, idx, *a, **k: seen.append(idx[0].tolist()) or "")
    assert cli.main(["generate", "--checkpoint", str(full_run[0]), "--prompt", "A<|endoftext|>B", "--no-fast-linear"]) == 0
    assert cli.main(["chat", "--checkpoint", str(serve_models[0] / "instruct"), "--prompt", "A<|endoftext|>B", "--no-fast-linear"]) == 0
    assert all(50256 not in ids for ids in seen) and len(seen) == 2


def test_adapters_carry_their_checksum_and_their_bases(tmp_path):
    "Flipped adapter bytes changed answers silently, and another base of the same shape at the recorded path was used."
    from llm_from_scratch.engine.checkpoints import load_adapted, save_adapters, save_checkpoint
    from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
    from llm_from_scratch.lora import LoRALayer, replace_linear_with_lora
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "base", GPTModel(GPT_CONFIG_TINY))
    model = GPTModel(GPT_CONFIG_TINY)
    for p in model.parameters(): p.requires_grad = False
    replace_linear_with_lora(model, rank=2, alpha=4)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALayer): m.B.normal_()
    save_adapters(tmp_path / "adapters", model, base_model=str(tmp_path / "base"))
    record = json.loads((tmp_path / "adapters" / "adapters.json").read_text())
    assert len(record["adapters_sha256"]) == 64 and len(record["base_sha256"]) == 64
    load_adapted(tmp_path / "adapters")
    weights = tmp_path / "adapters" / "adapters.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4096:] = bytes(b ^ 0xFF for b in data[-4096:])   # 4,096 flipped bytes, the file's size unchanged
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="adapters.safetensors is not the file that was saved"): load_adapted(tmp_path / "adapters")
    save_adapters(tmp_path / "adapters", model, base_model=str(tmp_path / "base"))
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "base", GPTModel(GPT_CONFIG_TINY))   # another base, the same shape, the same place
    with pytest.raises(CheckpointError, match="is not the one these adapters were trained on"): load_adapted(tmp_path / "adapters")
