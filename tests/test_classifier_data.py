"`llmfs finetune-classifier --data` beyond one CSV: the IMDB archive split as the book (notebook 05), a folder already split, --max-length."
import io
import json
import tarfile

import pandas as pd
import pytest
import torch

from llmfs_helpers import llmfs
from llm_from_scratch.engine.checkpoints import save_checkpoint
from llm_from_scratch.engine.cli import main
from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel


def tiny_imdb(path, per_folder=5, extra=()):
    "A .tar.gz of the IMDB archive's layout: `per_folder` reviews in each of train/test x pos/neg, plus `extra` (name, text) members."
    with tarfile.open(path, "w:gz") as tar:
        def add(name, text):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for split in ("train", "test"):
            for label, words in (("pos", "a wonderful, moving film"), ("neg", "an awful, boring film")):
                for k in range(per_folder): add(f"aclImdb/{split}/{label}/{k}_{7 if label == 'pos' else 2}.txt", f"Review {k}: {words}.")
        add("aclImdb/README", "The Large Movie Review Dataset.")
        for name, text in extra: add(name, text)
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    "A tiny GPT checkpoint to finetune."
    torch.manual_seed(123)
    return save_checkpoint(tmp_path_factory.mktemp("base") / "gpt", GPTModel(GPT_CONFIG_TINY))


def test_the_imdb_archive_is_split_as_the_book_and_its_labels_named(base, tmp_path):
    archive = tiny_imdb(tmp_path / "tiny_imdb.tar.gz")
    r = llmfs("finetune-classifier", "--checkpoint", base, "--data", archive, "--epochs", 1, "--batch-size", 2, "--max-length", 12,
              "--out", tmp_path / "clf", "--no-fast-linear")
    assert r.returncode == 0, r.stderr
    assert "on 14 texts, labels ['neg', 'pos']" in r.stdout             # 70% of the 20 reviews, the book's split
    assert json.loads((tmp_path / "clf" / "config.json").read_text())["classifier"]["max_length"] == 12   # --max-length, not the longest text
    r = llmfs("classify", "--checkpoint", tmp_path / "clf", "What a wonderful film.")
    assert r.returncode == 0 and r.stdout.split("\t")[0] in ("neg", "pos"), (r.stdout, r.stderr)


def test_a_folder_already_split_is_used_as_it_is(base, tmp_path, capsys):
    folder = tmp_path / "split"
    folder.mkdir()
    rows = {"train": 8, "validation": 2, "test": 2}
    for name, n in rows.items():
        pd.DataFrame({"text": [f"text {i} {name}" for i in range(n)], "label": ["good", "bad"] * (n // 2)}).to_csv(folder / f"{name}.csv", index=False)
    status = main(["finetune-classifier", "--checkpoint", str(base), "--data", str(folder), "--epochs", "1", "--batch-size", "2",
                   "--out", str(tmp_path / "clf"), "--no-fast-linear"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "on 8 texts, labels ['bad', 'good']" in out                  # all of train.csv: not balanced, not split again
    pd.DataFrame({"text": ["x", "y"], "label": ["good", "ugly"]}).to_csv(folder / "test.csv", index=False)
    status = main(["finetune-classifier", "--checkpoint", str(base), "--data", str(folder), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert status == 2 and "test.csv: labels ['good', 'ugly'] where the training texts have ['bad', 'good']" in err, err
    (folder / "test.csv").unlink()
    status = main(["finetune-classifier", "--checkpoint", str(base), "--data", str(folder), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert status == 2 and "a folder needs train.csv, validation.csv, test.csv (already split); it lacks test.csv" in err, err


@pytest.mark.parametrize("case, message", [
    ("escape", "refusing the member 'aclImdb/../../evil.txt': its path leaves the folder"),
    ("not_tar", "not a readable tar archive"),
    ("max_length", "--max-length must be at least 1, not 0"),
    ("missing", "no such file or folder"),
    ("not_the_real_one", "not the IMDB archive its name says"),
])
def test_bad_classifier_data_is_one_line(case, message, base, tmp_path, capsys):
    archive = tmp_path / ("aclImdb_v1.tar.gz" if case == "not_the_real_one" else "tiny_imdb.tar.gz")
    if case == "escape": tiny_imdb(archive, 1, extra=[("aclImdb/../../evil.txt", "gotcha")])
    elif case == "not_tar": archive.write_text("<html>Please log in</html>")
    elif case != "missing": tiny_imdb(archive, 1)   # (named as the real archive, it is checked against the real one's SHA-256)
    status = main(["finetune-classifier", "--checkpoint", str(base), "--data", str(archive), "--out", str(tmp_path / "clf"),
                   *(["--max-length", "0"] if case == "max_length" else [])])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
