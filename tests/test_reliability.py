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

from llmfs_helpers import FAST, env_with, llmfs, one_line_error


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
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3), "has no manifest.json, so damaged files would be trained on")
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3, "--unchecked"), "lacks state.epoch_rng")


def test_a_resume_with_a_damaged_state_field_is_refused(full_run, tmp_path):
    "TrainState.from_dict checks every field: a hand-edited epoch is one line naming it, not a crash later."
    finished = full_run[0]
    for f in finished.iterdir(): (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "manifest.json").unlink()   # no manifest to catch the edit first
    saved = torch.load(tmp_path / "training_state.pt", weights_only=True)
    saved["state"]["epoch"] = "one"
    torch.save(saved, tmp_path / "training_state.pt")
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3, "--unchecked"), "state.epoch is 'one': it must be an integer >= 0")



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
