"""The Quick start commands of README.md and nbs/index.ipynb.

`python tests/readme_commands.py test` prints the README's test command (`.ci/run` runs exactly that);
`python tests/readme_commands.py course` prints the one that opens the course, `pretrain` the main job's.
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shell_blocks(markdown: str) -> list[str]:
    "The contents of the ```sh blocks of a markdown text, in order."
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S)]


def readme_text() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def index_text() -> str:
    "The markdown cells of nbs/index.ipynb, joined as one document."
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def command(kind: str, markdown: str | None = None) -> str:
    "The Quick start command that runs the tests (`test`: ends with pytest) or opens the course (`course`)."
    blocks = shell_blocks(markdown if markdown is not None else readme_text())
    want = {"test": r"\bpytest$", "course": r"\bjupyter lab nbs/$", "pretrain": r"\bllmfs pretrain$"}[kind]
    found = [b for b in blocks if re.search(want, b)]
    if len(found) != 1: raise SystemExit(f"README.md should have exactly one {kind} command, found {found}")
    return found[0]


if __name__ == "__main__":
    print(command(sys.argv[1]))
