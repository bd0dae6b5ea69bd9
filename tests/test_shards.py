"Text larger than memory (nbs/engine/04_shards): prepare_shards (contents, index, skips, resume), ShardDataset, the sampler, and the command line."
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from llm_from_scratch.engine import shards
from llm_from_scratch.text_data import download, get_tokenizer
from llm_from_scratch.engine.distributed import ResumableDistributedSampler, distributed_loader
from llm_from_scratch.engine.shards import EOT_TOKEN, ShardDataset, list_text_files, prepare_shards, read_index

BASE = download("the-verdict.txt").read_text(encoding="utf-8")


def make_corpus(root:Path) -> dict:
    "A small corpus: a folder (with a subfolder, hidden entries and one non-UTF-8 file) and one loose file."
    paras = [p for p in BASE.split("\n\n") if p.strip()]
    texts = {
        "books/a.txt": "\n\n".join(paras[:15]),
        "books/b.txt": "\ufeff" + "\n\n".join(paras[15:30]),  # a byte-order mark: dropped
        "books/sub/c.txt": "\n\n".join(paras[30:]) + " café — ünïcode ✓",
        "books/sub/empty.txt": "",
        "books/.hidden.txt": "never read",
        "books/.git/d.txt": "never read either",
        "loose.txt": "A loose file given directly. " * 50,
    }
    for name, text in texts.items():
        (root/name).parent.mkdir(parents=True, exist_ok=True)
        (root/name).write_text(text, encoding="utf-8")
    (root/"books/sub/latin1.txt").write_bytes("caf\xe9 na\xefve \xff".encode("latin-1"))  # not UTF-8: skipped
    return texts


def expected_stream(root:Path, texts:dict) -> np.ndarray:
    "The token stream prepare_shards should write for make_corpus's sources: EOT then the tokens, file by file, in order."
    enc = get_tokenizer()
    order = ["books/a.txt", "books/b.txt", "books/sub/c.txt", "books/sub/empty.txt", "loose.txt"]
    ids = []
    for name in order: ids += [EOT_TOKEN] + enc.encode_ordinary(texts[name].removeprefix("\ufeff"))
    return np.array(ids, dtype=np.uint16)


def read_all(out:Path) -> np.ndarray:
    index = json.loads((out/"index.json").read_text())
    return np.concatenate([np.fromfile(out/s["file"], dtype="<u2") for s in index["shards"]])


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path/"corpus"
    texts = make_corpus(root)
    return root, [root/"books", root/"loose.txt"], texts


def test_list_text_files(corpus):
    root, sources, _ = corpus
    files = list_text_files(sources + [root/"books/a.txt"])  # a duplicate is read once
    assert [f.relative_to(root.resolve()).as_posix() for f in files] == [
        "books/a.txt", "books/b.txt", "books/sub/c.txt", "books/sub/empty.txt", "books/sub/latin1.txt", "loose.txt"]
    with pytest.raises(FileNotFoundError, match="neither a file nor a folder"): list_text_files([root/"missing"])


def test_prepare_contents_and_index(corpus, tmp_path):
    root, sources, texts = corpus
    stream = expected_stream(root, texts)
    out = tmp_path/"out"
    result = prepare_shards(sources, out, shard_tokens=1000, workers=2, progress=False, log=lambda *a: None)
    assert result["status"] == "created"
    np.testing.assert_array_equal(read_all(out), stream)
    index = read_index(out)
    assert {k: v for k, v in result.items() if k not in ("status", "seconds")} == index
    assert (index["tokenizer"], index["dtype"], index["eot_token"], index["complete"]) == ("gpt2", "uint16", 50256, True)
    assert index["total_tokens"] == len(stream) and index["next"] is None
    assert (index["files_read"], index["files_skipped"], index["num_files"]) == (5, 1, 6)
    assert index["skipped_examples"][0]["file"].endswith("latin1.txt") and "UnicodeDecodeError" in index["skipped_examples"][0]["reason"]
    *train, val = index["shards"]
    assert index["val_shard"] == val["file"] == f"shard_{len(train):05d}.bin" and val["split"] == "val"
    assert len(train) >= 2 and all(s["tokens"] == 1000 and s["split"] == "train" for s in train)
    assert index["min_val_tokens"] <= val["tokens"] < 1000 + index["min_val_tokens"]  # the tail is the validation shard
    assert sorted(p.name for p in out.iterdir()) == sorted([s["file"] for s in index["shards"]] + ["index.json"])  # no temporary files


def test_single_shard_is_split_90_10(corpus, tmp_path):
    _, sources, _ = corpus
    index = prepare_shards(sources, tmp_path/"out", shard_tokens=10**9, workers=1, progress=False, log=lambda *a: None)
    train, val = index["shards"]
    assert train["tokens"] == int(0.9*index["total_tokens"]) and val["tokens"] == index["total_tokens"] - train["tokens"]


def test_too_small_and_unreadable(tmp_path):
    (tmp_path/"tiny.txt").write_text("Hi")
    with pytest.raises(ValueError, match="too few to hold out a validation part"):
        prepare_shards([tmp_path/"tiny.txt"], tmp_path/"out1", workers=1, progress=False)
    (tmp_path/"bad").mkdir()
    (tmp_path/"bad/x.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(ValueError, match="could be read as UTF-8"):
        prepare_shards([tmp_path/"bad"], tmp_path/"out2", workers=1, progress=False)
    (tmp_path/"hidden_only").mkdir()
    (tmp_path/"hidden_only/.x.txt").write_text("hidden")
    with pytest.raises(ValueError, match="No files found"):
        prepare_shards([tmp_path/"hidden_only"], tmp_path/"out3", workers=1, progress=False)


def test_uint16_check():
    np.testing.assert_array_equal(shards._to_uint16([0, 50256, 65535]), np.array([0, 50256, 65535], dtype=np.uint16))
    with pytest.raises(ValueError, match="70000 does not fit in uint16"): shards._to_uint16(np.array([1, 70000]))
    with pytest.raises(ValueError, match="does not fit in uint16"): shards._to_uint16([-1])


# interrupted while writing the 2nd / the 4th shard / the validation shard (after a checkpoint past the skipped file)
@pytest.mark.parametrize("shard_tokens,fail_at", [(700, 1), (700, 3), (1300, 4)])
def test_resume_is_byte_identical(corpus, tmp_path, monkeypatch, shard_tokens, fail_at):
    _, sources, _ = corpus
    quiet = dict(shard_tokens=shard_tokens, workers=2, progress=False, log=lambda *a: None)
    whole = tmp_path/"whole"
    prepare_shards(sources, whole, **quiet)

    real_write, calls = shards._write_shard, []
    def flaky_write(path, segments):
        calls.append(path)
        if len(calls) > fail_at: raise KeyboardInterrupt  # as if Ctrl-C came while writing this shard
        real_write(path, segments)
    monkeypatch.setattr(shards, "_write_shard", flaky_write)
    part = tmp_path/"part"
    with pytest.raises(KeyboardInterrupt): prepare_shards(sources, part, **quiet)
    index = json.loads((part/"index.json").read_text())
    assert not index["complete"] and len(index["shards"]) == fail_at
    assert index["next"] == {"file": index["next"]["file"], "offset": index["next"]["offset"]}
    assert index["next"]["offset"] > 0  # the next shard starts inside a file: resume re-tokenises it and drops what was written
    if shard_tokens == 1300: assert (index["next"]["file"], index["files_read"], index["files_skipped"]) == (5, 4, 1)
    monkeypatch.setattr(shards, "_write_shard", real_write)

    logs = []
    result = prepare_shards(sources, part, **{**quiet, "log": logs.append})
    assert result["status"] == "resumed" and logs[0].startswith("Resuming")
    assert sorted(p.name for p in part.iterdir()) == sorted(p.name for p in whole.iterdir())
    for p in whole.iterdir(): assert (part/p.name).read_bytes() == p.read_bytes(), p.name  # shards and index alike

    before = {p.name: p.stat().st_mtime_ns for p in part.iterdir()}
    again = prepare_shards(sources, part, **{**quiet, "log": logs.append})
    assert again["status"] == "unchanged" and "nothing to do" in logs[-1]
    assert {p.name: p.stat().st_mtime_ns for p in part.iterdir()} == before


def test_other_settings_are_refused(corpus, tmp_path):
    root, sources, _ = corpus
    out = tmp_path/"out"
    prepare_shards(sources, out, shard_tokens=1000, workers=1, progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="shard_tokens: recorded 1000, now 2000"):
        prepare_shards(sources, out, shard_tokens=2000, workers=1, progress=False)
    with pytest.raises(ValueError, match="other settings.*sources"):
        prepare_shards(sources[:1], out, shard_tokens=1000, workers=1, progress=False)
    (root/"books/new.txt").write_text("a new book")
    with pytest.raises(ValueError, match="names or sizes changed"):
        prepare_shards(sources, out, shard_tokens=1000, workers=1, progress=False)
    stray = tmp_path/"stray"
    stray.mkdir(); (stray/"shard_00000.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="no index.json"): prepare_shards(sources, stray, workers=1, progress=False)


@pytest.fixture
def prepared(corpus, tmp_path):
    _, sources, _ = corpus
    out = tmp_path/"out"
    prepare_shards(sources, out, shard_tokens=1000, workers=1, progress=False, log=lambda *a: None)
    return out


def test_dataset_windows(prepared):
    index, ctx = read_index(prepared), 64
    for split in ("train", "val"):
        ds = ShardDataset(prepared, ctx, split)
        parts = [s for s in index["shards"] if s["split"] == split]
        expected = []
        for s in parts:  # windows with stride ctx inside each shard, never across a boundary
            t = np.fromfile(prepared/s["file"], dtype="<u2").astype(np.int64)
            expected += [t[j:j + ctx + 1] for j in range(0, len(t) - ctx, ctx)]
        assert len(ds) == len(expected) == sum((s["tokens"] - 1)//ctx for s in parts)
        assert len(ds.ends) == len(parts)  # O(shards) index, not one entry per window
        for k, w in enumerate(expected):
            x, y = ds[k]
            assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (ctx,)
            assert x.tolist() == w[:-1].tolist() and y.tolist() == w[1:].tolist()
        assert ds[-1][0].tolist() == expected[-1][:-1].tolist()
        with pytest.raises(IndexError): ds[len(ds)]
    assert ShardDataset(prepared, ctx, "val").paths == [str(prepared/index["val_shard"])]
    with pytest.raises(ValueError, match="no window"): ShardDataset(prepared, 5000, "val")
    with pytest.raises(ValueError, match="split must be"): ShardDataset(prepared, ctx, "test")


def test_unfinished_folder_is_refused(prepared):
    index = json.loads((prepared/"index.json").read_text())
    (prepared/"index.json").write_text(json.dumps({**index, "complete": False}))
    with pytest.raises(ValueError, match="unfinished.*resumes"): ShardDataset(prepared, 16)


def test_loader_splits_between_ranks(prepared):
    ctx, bs = 32, 4
    ds = ShardDataset(prepared, ctx)
    loaders = [distributed_loader(ds, 2 * bs, world_size=2, rank=r) for r in (0, 1)]   # a global batch of 8: 4 each
    seen = [list(l.sampler) for l in loaders]
    assert not set(seen[0]) & set(seen[1])
    assert len(seen[0]) == len(seen[1]) == len(ds)//2 and len(set(seen[0]) | set(seen[1])) == 2*(len(ds)//2)
    batches = list(loaders[0])
    assert len(batches) == len(seen[0])//bs
    for b, (x, y) in enumerate(batches):  # batches hold the sampler's windows, in its order
        assert x.shape == y.shape == (bs, ctx)
        for row, k in enumerate(seen[0][b*bs:(b + 1)*bs]):
            assert torch.equal(x[row], ds[k][0]) and torch.equal(y[row], ds[k][1])
    loaders[0].sampler.set_epoch(1)
    assert list(loaders[0].sampler) != seen[0]  # another order each epoch
    loaders[0].sampler.set_epoch(0)
    assert list(loaders[0].sampler) == seen[0]  # the same order for the same epoch (exact resume)
    val = distributed_loader(ShardDataset(prepared, ctx, "val"), 2, shuffle=False, drop_last=False)
    assert list(val.sampler) == list(range(len(val.dataset)))
    with pytest.raises(ValueError, match="rank must be"): distributed_loader(ds, bs, rank=2, world_size=2)
    with pytest.raises(ValueError, match="make no batch"): distributed_loader(ds, 10**6)


class Windows(torch.utils.data.Dataset):
    def __init__(self, n): self.n = n
    def __len__(self): return self.n
    def __getitem__(self, i): return i


@pytest.mark.parametrize("n,world_size", [(1, 1), (10, 1), (10, 3), (7, 4), (3, 5), (1000, 8)])
def test_lean_sampler_matches_distributed_sampler(n, world_size):
    from torch.utils.data.distributed import DistributedSampler
    for shuffle in (True, False):
        for drop_last in (True, False):
            if drop_last and n < world_size: continue
            for rank in range(world_size):
                kw = dict(num_replicas=world_size, rank=rank, shuffle=shuffle, seed=7, drop_last=drop_last)
                plain, lean = DistributedSampler(Windows(n), **kw), ResumableDistributedSampler(Windows(n), **kw)
                for epoch in (0, 3):
                    plain.set_epoch(epoch); lean.set_epoch(epoch)
                    assert list(lean) == list(plain) and len(lean) == len(plain)


# ---- the command line: llmfs prepare-data, then llmfs pretrain --data SHARDS

import signal
import subprocess
import time

from llmfs_helpers import FAST, LLMFS, llmfs


def same_weights(a, b):
    from safetensors.torch import load_file
    wa, wb = load_file(str(a/"model.safetensors")), load_file(str(b/"model.safetensors"))
    return wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)


def test_prepare_data_and_pretrain_on_shards_resume_mid_epoch_after_kill_9(corpus, tmp_path):
    root, sources, _ = corpus
    out = tmp_path/"shards"
    r = llmfs("prepare-data", *sources, "--out", out, "--shard-tokens", 1000, "--workers", 2)
    assert r.returncode == 0, r.stderr
    assert "Skipped 1 file " in r.stderr and "latin1.txt" in r.stderr and f"llmfs pretrain --data {out}" in r.stdout
    r = llmfs("prepare-data", *sources, "--out", out, "--shard-tokens", 1000)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    args = ["pretrain", "--data", out, *FAST, "--batch-size", 4, "--epochs", 2, "--checkpoint-every", 3]
    whole = tmp_path/"whole"
    r = llmfs(*args, "--out", whole)
    assert r.returncode == 0, r.stderr
    assert f"{out} (shards)" in r.stdout and "Done: 2 epochs" in r.stdout
    part = tmp_path/"part"   # killed without warning (kill -9) after its first checkpoint of every 3 steps
    proc = subprocess.Popen([*LLMFS, *map(str, args), "--out", str(part)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (part/"manifest.json").exists() and time.time() < deadline and proc.poll() is None: time.sleep(0.05)
    proc.send_signal(signal.SIGKILL); proc.communicate()
    saved = torch.load(part/"training_state.pt", weights_only=True)["state"]
    assert saved["epoch"] == 0 and saved["batch"] > 0 and (saved["step"] + 1) % 3 == 0   # a checkpoint in the middle of the first epoch
    r = llmfs("pretrain", "--resume", part, "--epochs", 2)   # the shards are the run's recorded data
    assert r.returncode == 0, r.stderr
    assert same_weights(part, whole)   # the rest of the epoch, from the same window, unread windows skipped


def test_prepare_data_errors_are_one_line(tmp_path):
    r = llmfs("prepare-data", tmp_path/"missing", "--out", tmp_path/"out")
    assert r.returncode == 2 and r.stderr.startswith("llmfs: error:") and "neither a file nor a folder" in r.stderr
    (tmp_path/"tiny.txt").write_text("Hi")
    r = llmfs("prepare-data", tmp_path/"tiny.txt", "--out", tmp_path/"out")
    assert r.returncode == 2 and "too few to hold out a validation part" in r.stderr and "Traceback" not in r.stderr
    r = llmfs("prepare-data", tmp_path/"tiny.txt", "--out", tmp_path/"out", "--shard-tokens", 1)
    assert r.returncode == 2 and "--shard-tokens must be at least 2" in r.stderr


def test_a_resume_keeps_its_kind_of_data(corpus, tmp_path):
    "A run on shards resumes only on the same shards, and a run on text only on its text."
    _, sources, _ = corpus
    out, other = tmp_path/"shards", tmp_path/"other"
    assert llmfs("prepare-data", *sources, "--out", out, "--shard-tokens", 1000).returncode == 0
    assert llmfs("prepare-data", *sources, "--out", other, "--shard-tokens", 1500).returncode == 0
    run = tmp_path/"run"
    r = llmfs("pretrain", "--data", out, *FAST, "--batch-size", 4, "--epochs", 1, "--out", run)
    assert r.returncode == 0, r.stderr
    r = llmfs("pretrain", "--resume", run, "--data", other, "--epochs", 2)
    assert r.returncode == 2 and "shards prepared from other files or cut otherwise" in r.stderr
    r = llmfs("pretrain", "--resume", run, "--data", sources[1], "--epochs", 2)
    assert r.returncode == 2 and "trained on shards" in r.stderr
    text_run = tmp_path/"text_run"
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--out", text_run)
    assert r.returncode == 0, r.stderr
    r = llmfs("pretrain", "--resume", text_run, "--data", out, "--epochs", 2)
    assert r.returncode == 2 and "started on a text, not shards" in r.stderr
