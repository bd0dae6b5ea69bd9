"Shared by the command-line tests: one finished run to reuse."
import pytest

from llmfs_helpers import FAST, llmfs


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    "An uninterrupted 2-epoch run of the tiny config: its folder and the finished process."
    out = tmp_path_factory.mktemp("full")
    r = llmfs("pretrain", *FAST, "--epochs", 2, "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r
