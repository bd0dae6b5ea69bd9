"""The container of `.devcontainer/` (VS Code, GitHub Codespaces, `docker run`) installs and opens the course as README.md says.

No container engine runs here, so the checks read the Dockerfile, the two devcontainer.json (JSONC: comments allowed)
and the README, and each `*_problems` function lists where they disagree; the last test shows that each one rejects
a copy broken on purpose.
"""
import copy
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import json5  # JSONC parser (comments, trailing commas); it comes with jupyterlab, in the dev extra
import pytest
from jupyter_core.paths import SYSTEM_CONFIG_PATH
from packaging.specifiers import SpecifierSet

sys.path.insert(0, os.path.dirname(__file__))
from readme_commands import ROOT, command, readme_text, shell_blocks

DEV = ROOT / ".devcontainer"


def sources() -> dict:
    "What the container is made of, and the README that describes it, as the checks below take them."
    try: import tomllib
    except ModuleNotFoundError: pytest.skip("tomllib is Python 3.11's")  # only to read requires-python
    return dict(dockerfile=(DEV / "Dockerfile").read_text(encoding="utf-8"),
                cpu=json5.loads((DEV / "devcontainer.json").read_text(encoding="utf-8")),
                cuda=json5.loads((DEV / "cuda" / "devcontainer.json").read_text(encoding="utf-8")),
                jupyter=json.loads((DEV / "jupyter_server_config.json").read_text(encoding="utf-8")),
                readme=readme_text(),
                requires_python=tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"])


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    "A Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined and comments dropped."
    lines = [l for l in dockerfile.splitlines() if not l.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(i.upper(), rest.strip()) for i, _, rest in (l.strip().partition(" ") for l in joined.splitlines() if l.strip())]


def substitute(text: str, values: dict) -> str:
    "`$NAME` and `${NAME}` replaced by their values where known, as Docker and the shell replace them."
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m[1], m[0]), text)


def variables(dockerfile: str, build_args: dict) -> dict:
    "The ARG (defaults overridden by `build_args`) and ENV values a Dockerfile defines, in order."
    out = {}
    for ins, rest in instructions(dockerfile):
        if ins not in ("ARG", "ENV"): continue
        for item in shlex.split(rest):
            k, _, v = item.partition("=")
            out[k] = build_args.get(k, substitute(v, out)) if ins == "ARG" else substitute(v, out)
    return out


def runs(dockerfile: str, build_args: dict) -> list[str]:
    "The RUN commands, with the ARG and ENV values that a build with `build_args` gives them."
    values = variables(dockerfile, build_args)
    return [substitute(rest, values) for ins, rest in instructions(dockerfile) if ins == "RUN"]


def last(dockerfile: str, instruction: str) -> str:
    "The arguments of an instruction's last occurrence ('' if none)."
    return ([rest for ins, rest in instructions(dockerfile) if ins == instruction] or [""])[-1]


def readme_torch_command(readme: str) -> str:
    "The README's command that installs PyTorch's CPU build first."
    found = re.findall(r"`(pip install torch --index-url \S+)`", readme)
    assert len(found) == 1, found
    return found[0]


def readme_docker_commands(readme: str) -> dict:
    "The README's `docker build` and `docker run` command lines, split as a shell splits them."
    lines = [l for b in shell_blocks(readme) for l in b.splitlines() if l.startswith("docker ")]
    found = {l.split()[1]: shlex.split(l) for l in lines}
    assert sorted(found) == ["build", "run"] and len(lines) == 2, lines
    return found


def option(argv: list[str], name: str) -> str | None:
    "The value of a command line's option (`-p 8888:8888`), or None."
    return argv[argv.index(name) + 1] if name in argv else None


def install_problems(dockerfile: str, config: dict, readme: str, **_) -> list[str]:
    "Where the container's install (for `config`) is not the README's: PyTorch from its index first, then its `pip install -e`."
    problems, build_args = [], config["build"].get("args", {})
    torch_cmd, course = readme_torch_command(readme), command("course", readme)
    install = course.split(" && ")[0]
    if install != command("test", readme).split(" && ")[0]: problems.append("the README installs the course in two ways")
    cpu_index = torch_cmd.split("--index-url ")[1]
    expected = torch_cmd.replace(cpu_index, build_args["TORCH_INDEX"]) if "TORCH_INDEX" in build_args else torch_cmd
    steps = [c.strip() for r in runs(dockerfile, build_args) for c in r.split("&&")]  # each shell command, in order
    torch_steps = [i for i, c in enumerate(steps) if c == expected]
    if not torch_steps: problems.append(f"no RUN step runs `{expected}`")
    deps = [i for i, c in enumerate(steps) if c.startswith("pip install -r")]
    if not deps: problems.append("the image does not preinstall the dependencies")
    if torch_steps and deps and deps[0] < torch_steps[0]: problems.append("the dependencies are installed before PyTorch")
    extra = re.search(r"\[(\w+)\]", install)[1]
    if f"['optional-dependencies']['{extra}']" not in dockerfile:
        problems.append(f"the image does not preinstall the `{extra}` extra that the README installs")
    if config.get("postCreateCommand") != install:
        problems.append(f"postCreateCommand is {config.get('postCreateCommand')!r}, the README installs with {install!r}")
    if json.loads(last(dockerfile, "CMD") or "[]") != ["bash", "-c", course]:
        problems.append(f"the image's CMD is not the README's `{course}`")
    return problems


def port_problems(dockerfile: str, config: dict, jupyter: dict, readme: str, **_) -> list[str]:
    "Where JupyterLab in the container cannot be reached on the port that VS Code forwards and the README maps."
    problems, server = [], jupyter.get("ServerApp", {})
    port = server.get("port")
    if server.get("ip") != "0.0.0.0": problems.append(f"JupyterLab listens on {server.get('ip')!r}, not on every interface")
    if server.get("open_browser") is not False: problems.append("JupyterLab tries to open a browser inside the container")
    if port not in config.get("forwardPorts", []): problems.append(f"port {port} is not forwarded")
    if config.get("portsAttributes", {}).get(str(port), {}).get("label") != "JupyterLab":
        problems.append(f"port {port} has no JupyterLab label")
    if last(dockerfile, "EXPOSE") != str(port): problems.append(f"the image exposes {last(dockerfile, 'EXPOSE')!r}, not {port}")
    copies = [shlex.split(rest) for ins, rest in instructions(dockerfile) if ins == "COPY"]
    dests = [c[-1] for c in copies if c[-2] == ".devcontainer/jupyter_server_config.json"]
    # Jupyter's own system config folders: jupyter_core gives the POSIX ones, the container's, on Linux and macOS
    if not any(Path(d).name == "jupyter_server_config.json" and str(Path(d).parent) in SYSTEM_CONFIG_PATH for d in dests):
        problems.append(f"jupyter_server_config.json is not copied into one of Jupyter's system config folders {SYSTEM_CONFIG_PATH}")
    published = option(readme_docker_commands(readme)["run"], "-p")
    if published is None or published.split(":")[-1] != str(port):
        problems.append(f"the README's docker run publishes {published!r}, not the container's port {port}")
    return problems


def user_problems(dockerfile: str, config: dict, **_) -> list[str]:
    "Where VS Code would not work as the image's own user, in the virtual environment that the install goes into."
    problems, user = [], last(dockerfile, "USER")
    if config.get("remoteUser") != user: problems.append(f"remoteUser is {config.get('remoteUser')!r}, the image's user {user!r}")
    if user in ("", "root"): problems.append("the container runs as root")
    values = variables(dockerfile, {})
    venv = values.get("VIRTUAL_ENV", "")
    if not venv.startswith(f"/home/{user}/"):  # VS Code gives the user your uid and chowns its home folder, not /opt
        problems.append(f"the virtual environment {venv!r} is not in {user}'s home folder")
    if not values.get("PATH", "").startswith(f"{venv}/bin:"): problems.append("the virtual environment is not first on PATH")
    interpreter = config.get("customizations", {}).get("vscode", {}).get("settings", {}).get("python.defaultInterpreterPath")
    if interpreter != f"{venv}/bin/python": problems.append(f"VS Code's Python is {interpreter!r}, not the environment's")
    if not {"ms-python.python", "ms-toolsai.jupyter"} <= set(config.get("customizations", {}).get("vscode", {}).get("extensions", [])):
        problems.append("VS Code's Python and Jupyter extensions are missing")
    return problems


def python_problems(dockerfile: str, requires_python: str, **_) -> list[str]:
    "Where the image's Python is not one that pyproject.toml accepts."
    m = re.fullmatch(r"python:(\d+\.\d+)(\.\d+)?-slim\S*", last(dockerfile, "FROM"))
    if not m: return [f"the image is not built FROM a python:X.Y-slim image: {last(dockerfile, 'FROM')!r}"]
    problems, version = [], m[1]
    if version not in SpecifierSet(requires_python): problems.append(f"Python {version} is outside requires-python {requires_python}")
    if "tomllib" in dockerfile and version not in SpecifierSet(">=3.11"): problems.append(f"Python {version} has no tomllib")
    return problems


def variant_problems(cpu: dict, cuda: dict, readme: str, dockerfile: str, **_) -> list[str]:
    "Where the CUDA variant is not the CPU one with PyTorch's CUDA build and the GPUs, as the README tells `docker` users."
    problems, words = [], " ".join(readme.split())  # the README's prose, whatever its line breaks
    same = lambda c: {k: v for k, v in c.items() if k not in ("name", "build", "runArgs")}
    if same(cpu) != same(cuda): problems.append("cuda/devcontainer.json differs from devcontainer.json beyond name, build and runArgs")
    for key in ("dockerfile", "context"):
        if (DEV / "cuda" / cuda["build"][key]).resolve() != (DEV / cpu["build"][key]).resolve():
            problems.append(f"the two configurations build with different {key}s")
    build = readme_docker_commands(readme)["build"]
    if (ROOT / option(build, "-f")).resolve() != (DEV / cpu["build"]["dockerfile"]).resolve() or \
       (ROOT / build[-1]).resolve() != (DEV / cpu["build"]["context"]).resolve():
        problems.append("the README's docker build uses another Dockerfile or context than devcontainer.json")
    args = dict(re.findall(r"`--build-arg (\w+)=(\S+)` to `docker build`", words))
    if args != cuda["build"].get("args") or not args: problems.append(f"the README's CUDA build arguments {args} are not cuda/devcontainer.json's")
    arg_names = {shlex.split(rest)[0].split("=")[0] for ins, rest in instructions(dockerfile) if ins == "ARG"}
    if not set(cuda["build"].get("args", {})) <= arg_names: problems.append("cuda/devcontainer.json sets a build argument the Dockerfile lacks")
    run_args = " ".join(cuda.get("runArgs", []))
    if "--gpus all" not in run_args: problems.append("the CUDA variant gives the container no GPU")
    if f"`{run_args}` to `docker run`" not in words: problems.append(f"the README does not add `{run_args}` to docker run")
    if cpu.get("runArgs"): problems.append("the CPU variant asks for run arguments (a GPU?)")
    for c in (cpu, cuda):  # VS Code offers the configurations by these names
        if f"*{c['name']}*" not in words: problems.append(f"the README does not name the configuration {c['name']!r}")
    run = readme_docker_commands(readme)["run"]
    if run[-1] != option(build, "-t"): problems.append("the README runs another image than it builds")
    mount = option(run, "-v") or ""
    if mount.split(":")[-1] != last(dockerfile, "WORKDIR"): problems.append(f"the README mounts the course at {mount!r}, not the image's WORKDIR")
    return problems


CHECKS = [install_problems, port_problems, user_problems, python_problems, variant_problems]


@pytest.mark.parametrize("variant", ["cpu", "cuda"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_the_container_agrees_with_the_readme(check, variant):
    s = sources()
    assert check(**{**s, "config": s[variant]}) == []


def test_readme_commands_are_what_the_container_runs():
    "The steps as a learner reads them: the README's commands, found in the image and in devcontainer.json."
    s = sources()
    assert readme_torch_command(s["readme"]) == "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in runs(s["dockerfile"], {})
    assert "pip install torch --index-url https://pypi.org/simple" in runs(s["dockerfile"], s["cuda"]["build"]["args"])
    assert s["cpu"]["postCreateCommand"] == s["cuda"]["postCreateCommand"] == 'pip install -e ".[dev]"'
    assert json.loads(last(s["dockerfile"], "CMD")) == ["bash", "-c", 'pip install -e ".[dev]" && jupyter lab nbs/']
    assert s["cpu"]["forwardPorts"] == [8888]


def test_jupyter_reads_the_container_config(tmp_path):
    "Jupyter itself, given the container's config file, listens on every interface on the forwarded port."
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(DEV), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    out = subprocess.run([sys.executable, "-m", "jupyterlab", "--show-config-json"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    server = json.loads(out.stdout)["ServerApp"]
    assert (server["ip"], server["open_browser"]) == ("0.0.0.0", False)
    assert server["port"] in sources()["cpu"]["forwardPorts"]


def _set(d: dict, path: str, value) -> dict:
    d = copy.deepcopy(d)
    *keys, leaf = path.split(".")
    target = d
    for k in keys: target = target[k]
    target[leaf] = value
    return d


BROKEN = {  # a copy broken on purpose -> words of the problem that the checks must report
    "torch from PyPI": (lambda s: {**s, "dockerfile": s["dockerfile"].replace("ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu",
                                                                                "ARG TORCH_INDEX=https://pypi.org/simple")},
                        "no RUN step runs `pip install torch --index-url https://download.pytorch.org/whl/cpu`"),
    "another install": (lambda s: {**s, "cpu": {**s["cpu"], "postCreateCommand": "pip install -e ."}}, "postCreateCommand is"),
    "CMD without the course": (lambda s: {**s, "dockerfile": s["dockerfile"].replace(" && jupyter lab nbs/", " && jupyter lab")},
                               "the image's CMD is not"),
    "deps before torch": (lambda s: {**s, "dockerfile": s["dockerfile"].replace("RUN pip install torch --index-url $TORCH_INDEX", "RUN true").replace(
                              "&& pip install -r /tmp/requirements.txt", "&& pip install -r /tmp/requirements.txt && pip install torch --index-url $TORCH_INDEX")},
                          "the dependencies are installed before PyTorch"),
    "jupyter on loopback": (lambda s: {**s, "jupyter": _set(s["jupyter"], "ServerApp.ip", "127.0.0.1")}, "JupyterLab listens on '127.0.0.1'"),
    "jupyter on 8889": (lambda s: {**s, "jupyter": _set(s["jupyter"], "ServerApp.port", 8889)}, "port 8889 is not forwarded"),
    "config not installed": (lambda s: {**s, "dockerfile": s["dockerfile"].replace("/etc/jupyter/", "/home/learner/")},
                             "is not copied into one of Jupyter's system config folders"),
    "root": (lambda s: {**s, "cpu": {**s["cpu"], "remoteUser": "root"}}, "remoteUser is 'root'"),
    "venv in /opt": (lambda s: {**s, "dockerfile": s["dockerfile"].replace("ENV VIRTUAL_ENV=/home/learner/venv", "ENV VIRTUAL_ENV=/opt/venv")},
                     "is not in learner's home folder"),
    "Python 3.9": (lambda s: {**s, "dockerfile": s["dockerfile"].replace("FROM python:3.11-slim", "FROM python:3.9-slim")},
                   "Python 3.9 is outside requires-python"),
    "Python 3.10 without tomllib": (lambda s: {**s, "dockerfile": s["dockerfile"].replace("FROM python:3.11-slim", "FROM python:3.10-slim")},
                                    "Python 3.10 has no tomllib"),
    "CUDA without GPUs": (lambda s: {**s, "cuda": {**s["cuda"], "runArgs": ["--shm-size=1g"]}}, "gives the container no GPU"),
    "CUDA with another arg": (lambda s: {**s, "cuda": _set(s["cuda"], "build.args", {"TORCH_INDEX": "https://download.pytorch.org/whl/cu118"})},
                              "the README's CUDA build arguments"),
    "CUDA renamed": (lambda s: {**s, "cuda": {**s["cuda"], "name": "llm-from-scratch (GPU)"}},
                     "the README does not name the configuration 'llm-from-scratch (GPU)'"),
    "variants drift apart": (lambda s: {**s, "cuda": {**s["cuda"], "forwardPorts": [8080]}}, "differs from devcontainer.json"),
    "README mounts elsewhere": (lambda s: {**s, "readme": s["readme"].replace(':/workspaces/llm-from-scratch llm-from-scratch', ':/course llm-from-scratch')},
                                "not the image's WORKDIR"),
    "README publishes 8000": (lambda s: {**s, "readme": s["readme"].replace("-p 127.0.0.1:8888:8888", "-p 127.0.0.1:8888:8000")},
                              "the README's docker run publishes"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_checks_reject_a_broken_copy(name):
    "Each check can fail: a copy of the sources broken in one place is reported, with the words that say where."
    s = sources()
    breaks, words = BROKEN[name]
    broken = breaks(s)
    assert broken != s, "the breakage did not change anything: its text is no longer in the sources"
    found = [p for check in CHECKS for variant in ("cpu", "cuda") for p in check(**{**broken, "config": broken[variant]})]
    assert any(words in p for p in found), found
