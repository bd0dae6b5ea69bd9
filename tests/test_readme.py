"README.md mirrors nbs/index.ipynb, and its Quick start commands work."
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from readme_commands import ROOT, command, index_text, readme_text, shell_blocks


def _normalise(markdown: str) -> str:
    markdown = re.sub(r"<!--.*?-->", "", markdown, flags=re.S)
    markdown = markdown.replace("](nbs/", "](")  # README links into nbs/, the docs home page sits inside it
    return " ".join(markdown.split())


def test_readme_and_index_give_the_same_commands():
    readme, index = shell_blocks(readme_text()), shell_blocks(index_text())
    assert len(readme) >= 3
    assert readme == index


def test_readme_is_index_word_for_word():
    assert _normalise(readme_text()) == _normalise(index_text())


def test_quick_start_commands():
    assert command("test") == 'pip install -e ".[dev]" && pytest'
    assert command("pretrain") == "pip install -e . && llmfs pretrain"
    assert command("course").endswith("jupyter lab nbs/")
    assert command("test", index_text()) == command("test")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_commands.py test" in ci


def test_readme_images_exist():
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", readme_text())
    assert images
    for path in images: assert (ROOT / path).is_file(), path


def test_readme_lists_every_notebook():
    notebooks = sorted(p.relative_to(ROOT / "nbs").with_suffix("").as_posix()
                       for p in [*(ROOT / "nbs").glob("[0-9][0-9]_*.ipynb"), *(ROOT / "nbs" / "engine").glob("[0-9][0-9]_*.ipynb")])
    assert len(notebooks) >= 17, notebooks   # the chapters and the engine
    for name in notebooks: assert f"[{name}](nbs/{name}.ipynb)" in readme_text(), name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("jupyter") is None, reason="jupyterlab is part of the dev extra")
def test_course_command_opens_the_notebooks(tmp_path):
    "Run the README's `jupyter lab nbs/` (without a browser) and ask the server for the course's notebooks."
    jupyter_cmd = command("course").split("&&")[-1].split()
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    extra = ["--no-browser", f"--port={port}", "--IdentityProvider.token=llmfs"]
    if hasattr(os, "geteuid") and os.geteuid() == 0: extra.append("--allow-root")  # CI machines run as root
    proc = subprocess.Popen(jupyter_cmd + extra,
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, listing = time.time() + 60, None
        while time.time() < deadline and listing is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token=llmfs", timeout=5) as r:
                    listing = r.read().decode()
            except OSError:
                assert proc.poll() is None, "jupyter lab exited early"
                time.sleep(0.5)
        assert listing is not None, "jupyter lab did not answer within 60 s"
        assert '"00_text_data.ipynb"' in listing
    finally:
        proc.terminate()
        proc.wait(timeout=30)
