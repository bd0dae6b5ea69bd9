"""The docs site: nbdev's processing of the notebooks before Quarto, its checks, and a local preview without Quarto.

The published site is built by `.github/workflows/deploy.yaml`: `nbdev-docs` runs the same processing as
`process` below, then Quarto renders the processed notebooks. Quarto cannot be installed everywhere, so this
script stops where Quarto starts, checks what nbdev made, and renders a *preview* with nbconvert.

    python tools/site.py check            # nbdev's processing into _proc/, then the checks (exit 1 on a problem)
    python tools/site.py preview [DIR]    # ...then an HTML preview in DIR (default _preview/); open DIR/index.html
    python tools/site.py screenshots      # ...then the README's pictures of the site, into nbs/images/
"""
import html
import json
import os
import posixpath
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
SITE_URL = "https://llm-from-scratch.github.io/llm-from-scratch"
PREVIEW_NOTE = ("A local preview rendered with nbconvert from nbdev's processed notebooks. The published site, "
                f"built by Quarto from the same notebooks, is at <a href=\"{SITE_URL}/\">{SITE_URL.split('//')[1]}</a>.")


def process(root: Path = ROOT) -> Path:
    "Run the steps `nbdev-docs` runs before Quarto (site config, module index, sidebar, `proc_nbs`); return `_proc/`."
    from nbdev.doclinks import _build_modidx
    from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
    from nbdev.serve import proc_nbs
    here = os.getcwd()
    os.chdir(root)  # nbdev reads pyproject.toml from the working directory, as nbdev-docs does
    try:
        refresh_quarto_yml()
        _build_modidx()
        nbdev_sidebar.__wrapped__(path=root / "nbs")
        # serially, so that an error in a notebook stops here with its traceback instead of inside a worker
        return proc_nbs(str(root / "nbs"), n_workers=0, force=True)
    finally:
        os.chdir(here)


# ---------------------------------------------------------------------------------------------------------- checks

def read_nb(path: Path) -> dict:
    "A notebook as plain JSON."
    return json.loads(Path(path).read_text(encoding="utf-8"))


def text(x) -> str:
    "A notebook field (a string or a list of lines) as one string."
    return "".join(x) if isinstance(x, list) else (x or "")


def directives(source: str) -> dict:
    "The `#| key: value` lines at the top of a cell, as a dict (a bare `#| key` maps to '')."
    out = {}
    for line in source.splitlines():
        if not line.startswith("#|"): break
        key, _, value = line[2:].strip().partition(":")
        for k in key.split():  # `#| export` or `#| hide`; quarto options have one key and a value
            out[k] = value.strip()
    return out


def frontmatter(nb: dict) -> dict:
    "The YAML frontmatter nbdev put in a processed notebook's first raw cell."
    import yaml
    for cell in nb["cells"]:
        if cell["cell_type"] == "raw" and text(cell["source"]).startswith("---"):
            return yaml.safe_load(text(cell["source"]).strip().strip("-")) or {}
    return {}


def slug(heading: str) -> str:
    "The anchor Quarto (pandoc) gives a markdown heading: formatting gone, lower case, spaces to hyphens, from the first letter."
    s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    s = re.sub(r"[`*]", "", s).lower()
    s = re.sub(r"[^\w\-. ]", "", s)
    s = re.sub(r"\s+", "-", s.strip())
    s = re.sub(r"^[^a-z]+", "", s)
    return s or "section"


def anchors(nb: dict) -> set:
    "Every anchor a processed notebook's page will have: its headings and the show_doc entries."
    out, seen = set(), {}
    for cell in nb["cells"]:
        chunks = [text(cell.get("source"))] if cell["cell_type"] == "markdown" else [
            text(o.get("data", {}).get("text/markdown")) for o in cell.get("outputs", [])]
        for chunk in chunks:
            chunk = re.sub(r"^```.*?^```", "", chunk, flags=re.M | re.S)   # a `# comment` in a code block is no heading
            for m in re.finditer(r"^#{1,6}\s+(.+?)\s*(\{#([\w-]+)\})?$", chunk, flags=re.M):
                anchor = m.group(3) or slug(m.group(1))
                if anchor in seen: seen[anchor] += 1; anchor = f"{anchor}-{seen[anchor]}"   # pandoc numbers repeats
                else: seen[anchor] = 0
                out.add(anchor)
    return out


BARE_REPR = re.compile(r"<[^<>\n]* at 0x[0-9a-fA-F]+>|^<(Figure size|Axes:|matplotlib\.)[^\n]*>$", flags=re.M)


def output_problems(cell: dict) -> list:
    "What is wrong with a processed cell's outputs: errors, tracebacks, bare object reprs."
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "error":
            out.append(f"an error output ({o.get('ename')}: {o.get('evalue')})")
        elif o["output_type"] == "stream" and "Traceback (most recent call last)" in text(o.get("text")):
            out.append("a traceback printed in its output")
        elif o["output_type"] == "stream" and BARE_REPR.search(text(o.get("text"))):
            out.append(f"a bare object repr printed: {BARE_REPR.search(text(o.get('text'))).group(0)[:80]}")
        elif o["output_type"] in ("execute_result", "display_data"):
            data = o.get("data", {})
            plain = text(data.get("text/plain")).strip()
            if set(data) == {"text/plain"} and BARE_REPR.search(plain):
                out.append(f"a bare object repr as its output: {plain[:80]}")
    return out


def module_names(module: str) -> dict:
    "The functions and classes a module exports (its `__all__`), by name."
    import importlib
    mod = importlib.import_module(f"llm_from_scratch.{module}")
    return {n: getattr(mod, n) for n in getattr(mod, "__all__", [])
            if callable(getattr(mod, n)) and getattr(getattr(mod, n), "__module__", None) == mod.__name__}


def param_names(obj) -> list:
    "The parameters show_doc lists for a function or class (no self, no *args/**kwargs markers)."
    import inspect
    try: sig = inspect.signature(obj)
    except (TypeError, ValueError): return []
    return [p for p in sig.parameters if p != "self"]


def showdoc_problems(nb: dict, module: str) -> list:
    "Exported functions and classes without a show_doc entry that has their docstring and their parameters."
    import inspect
    entries = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            md = text(o.get("data", {}).get("text/markdown"))
            m = re.search(r"^#{2,4} (\S+)\s*$", md, flags=re.M)
            if m and "```python" in md: entries[m.group(1)] = md
    out = []
    for name, obj in module_names(module).items():
        doc = inspect.getdoc(obj) or ""
        entry = entries.get(name)
        if not doc.strip(): out.append(f"`{name}` has no docstring")
        elif entry is None: out.append(f"`{name}` has no show_doc entry")
        else:
            flat = " ".join(entry.split())
            if " ".join(doc.split()) not in flat: out.append(f"`{name}`'s show_doc entry lacks its docstring")
            missing = [p for p in param_names(obj) if not re.search(rf"\b{re.escape(p)}\b", entry)]
            if missing: out.append(f"`{name}`'s show_doc entry lacks its parameters {missing}")
    return out


def undescribed_parameters(modules) -> tuple[int, list]:
    "How many parameters the exported functions and classes of `modules` have, and those without a docment comment."
    from fastcore.docments import docments
    total, missing = 0, []
    for module in modules:
        for name, obj in module_names(module).items():
            try: docs = docments(obj, full=True)
            except Exception: continue
            for p, d in docs.items():
                if p in ("self", "return"): continue
                total += 1
                if not d.get("docment"): missing.append(f"{module}.{name}({p})")
    return total, missing


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<img [^>]*src=\"([^\"]+)\"")


def notebooks(nbs: Path = NBS) -> list:
    "Every notebook of the site, chapters and engine (nbs/engine/), in a stable order; none of nbdev's or Quarto's own."
    return sorted(p for p in nbs.rglob("*.ipynb") if not p.name.startswith(("_", "."))
                  and not {".ipynb_checkpoints", "_proc", ".quarto", "_site"} & set(p.relative_to(nbs).parts))


def rel(path: Path, nbs: Path = NBS) -> str:
    "A notebook's name on the site: its path below nbs/, with forward slashes (`engine/07_cli.ipynb`)."
    return Path(path).relative_to(nbs).as_posix()


def resolve(folder: str, target: str) -> str:
    "A link `target` written in a page of `folder` (`''` or `engine`), as a path from the site's root."
    return posixpath.normpath(posixpath.join(folder, target)) if folder else posixpath.normpath(target)


def link_problems(nb: dict, pages: dict, cache: Path, folder: str = "") -> list:
    "Broken images and links in a processed notebook's markdown (written in `folder` of the site): missing files, pages or anchors."
    out, own = [], anchors(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown": continue
        src = re.sub(r"```.*?```|`[^`\n]*`", "", text(cell.get("source")), flags=re.S)  # not in code
        for m in LINK.finditer(src):
            target = m.group(1) or m.group(2)
            is_image = m.group(0).startswith(("!", "<img"))
            if target.startswith(("mailto:", "data:")): continue
            here = folder
            if target.startswith(SITE_URL): target, here = target[len(SITE_URL):].lstrip("/") or "index.html", ""
            elif re.match(r"https?://", target): continue
            file, _, anchor = target.partition("#")
            path = resolve(here, file) if file else ""
            if is_image:
                if not (cache / path).exists(): out.append(f"image {target} does not exist")
            elif not file:
                if anchor not in own: out.append(f"link {target}: no such heading on this page")
            elif path in pages:
                if anchor and anchor not in pages[path]: out.append(f"link {target}: no such heading on that page")
            elif not (cache / path).exists():
                out.append(f"link {target} points at no page")
    return out


SOLUTION_OPEN = re.compile(r'^:::\s*\{\.callout-\w+[^}]*collapse="true"[^}]*title="([^"]+)"[^}]*\}\s*$')


def fenced(cells: list) -> tuple[list, list]:
    "The code cells inside collapsed callouts (a markdown cell opening `::: {.callout-* collapse=\"true\"}`, then a `:::`), and fence errors."
    inside, found, errors = None, [], []
    for cell in cells:
        src = text(cell.get("source")).strip()
        opens, closes = cell["cell_type"] == "markdown" and SOLUTION_OPEN.match(src), cell["cell_type"] == "markdown" and src == ":::"
        if (inside is not None or opens) and not collapsed_in_jupyterlab(cell):   # JupyterLab shows what the site folds away
            errors.append(f"a cell of a collapsed callout shows in JupyterLab (metadata jupyter.source_hidden"
                          f"{' and outputs_hidden' if cell['cell_type'] == 'code' else ''} missing): {src[:40]!r}")
        if cell["cell_type"] != "markdown":
            if inside is not None and cell["cell_type"] == "code": found.append((inside, cell))
            continue
        if opens:
            if inside is not None: errors.append("a collapsed callout opens inside another")
            inside = opens.group(1)
        elif closes:
            if inside is None: errors.append("a ':::' closes no callout")
            inside = None
    if inside is not None: errors.append("a collapsed callout is never closed")
    return found, errors


def collapsed_in_jupyterlab(cell: dict) -> bool:
    "Whether JupyterLab shows `cell` folded: its source hidden, and a code cell's outputs too."
    shown = (cell.get("metadata") or {}).get("jupyter") or {}
    return bool(shown.get("source_hidden")) and (cell["cell_type"] != "code" or bool(shown.get("outputs_hidden")))


def chapter_problems(nb: dict) -> list:
    "What a chapter page must have: an opening that says what it builds and what it follows, exercises with solutions."
    out, cells = [], nb["cells"]
    opening = " ".join(text(c.get("source")) for c in cells[:4] if c["cell_type"] == "markdown")
    if "**You build**" not in opening or "**It follows**" not in opening:
        out.append("the opening lacks '**You build**' and '**It follows**'")
    heads = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and text(c.get("source")).startswith("## ")]
    last = heads[-1] if heads else None
    if last is None or not text(cells[last]["source"]).startswith("## Exercises"):
        out.append("the last section is not '## Exercises'")
        return out
    rest = cells[last:]
    starts = [i for i, c in enumerate(rest) if c["cell_type"] == "markdown" and re.match(r"### Exercise", text(c["source"]))]
    out += fenced(rest)[1]
    if not starts: out.append("the Exercises section has no '### Exercise' heading")
    for a, b in zip(starts, starts[1:] + [len(rest)]):
        if not [s for s in fenced(rest[a:b])[0] if s[0] == "Solution"]:
            title = text(rest[a]["source"]).splitlines()[0].lstrip("# ")
            out.append(f"'{title}' has no collapsed solution")
    return out


def engine_problems(nb: dict) -> list:
    "What an engine page must have: an opening that says what it builds, and what it runs or follows; any exercises solved."
    out, cells = [], nb["cells"]
    opening = " ".join(text(c.get("source")) for c in cells[:4] if c["cell_type"] == "markdown")
    if "**You build**" not in opening or not ("**It serves**" in opening or "**It follows**" in opening):
        out.append("the opening lacks '**You build**' and '**It serves**' (or '**It follows**')")
    heads = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and text(c.get("source")).startswith("## Exercises")]
    if heads: out += [p for p in chapter_problems(nb) if "opening" not in p]   # exercises, if any, as a chapter's
    return out


HIDDEN = {"hide", "export", "exporti", "default_exp"}   # directives whose cells nbdev keeps off the page


def cell_code(source: str) -> str:
    "A cell's code without its `#|` directive lines, stripped."
    return "\n".join(line for line in source.splitlines() if not line.startswith("#|")).strip()


def page_of(name: str, fm: dict) -> str:
    "The page (from the site's root) of the notebook `name` (`engine/07_cli.ipynb`), given its frontmatter."
    folder = posixpath.dirname(name)
    return posixpath.join(folder, fm.get("output-file", posixpath.basename(name).replace(".ipynb", ".html")))


def check(cache: Path, nbs: Path = NBS) -> list:
    "Every problem found in the processed notebooks in `cache` against their sources in `nbs`, as lines of text."
    problems, pages, processed = [], {}, {}
    for src in notebooks(nbs):
        name = rel(src, nbs)
        dst = cache / name
        if not dst.exists():
            problems.append(f"{name}: nbdev's processing made no page"); continue
        processed[src] = read_nb(dst)
        fm = frontmatter(processed[src])
        if not fm.get("title"): problems.append(f"{name}: no title in its frontmatter")
        pages[name] = pages[page_of(name, fm)] = anchors(processed[src])
    for src, nb in processed.items():
        source = read_nb(src)
        where = rel(src, nbs)
        module = next((m.group(1) for c in source["cells"]
                       for m in [re.match(r"#\|\s*default_exp\s+(\S+)", text(c["source"]))] if m), None)
        shown = {cell_code(text(c.get("source"))): c for c in nb["cells"] if c["cell_type"] == "code" and cell_code(text(c.get("source")))}
        for cell in nb["cells"]:   # nbdev drops these directives' cells; one left on a page still carries them
            d = directives(text(cell.get("source"))) if cell["cell_type"] == "code" else {}
            if d.keys() & HIDDEN and not d.keys() & {"exports"}:
                problems.append(f"{where}: cell {cell.get('id')} ({', '.join(d)}) is still on the page")
        for cell in source["cells"]:
            d = directives(text(cell["source"])) if cell["cell_type"] == "code" else {}
            left = shown.get(cell_code(text(cell["source"])))
            if d.keys() & HIDDEN and not d.keys() & {"exports"} and left is not None and not directives(text(left.get("source"))).keys() & HIDDEN:
                problems.append(f"{where}: the code of hidden cell {cell.get('id')} ({', '.join(d)}) is on the page")
        for cell in nb["cells"]:
            problems += [f"{where}: cell {cell.get('id')} has {p}" for p in output_problems(cell)]
        if module:
            problems += [f"{where}: {p}" for p in showdoc_problems(nb, module)]
        problems += [f"{where}: {p}" for p in link_problems(nb, pages, cache, posixpath.dirname(where))]
        if re.match(r"\d\d_", where):   # a chapter of the book (an engine page, engine/NN_*, is not)
            problems += [f"{where}: {p}" for p in chapter_problems(nb)]
        elif where.startswith("engine/"):
            problems += [f"{where}: {p}" for p in engine_problems(nb)]
    return problems


# --------------------------------------------------------------------------------------------------------- preview

TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_css -%}<style>{{ resources.site_css }}</style>{%- endblock html_head_css -%}
{%- block body_header -%}
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<nav class="site-nav">{{ resources.site_nav }}</nav>
<main class="site-main">
<p class="preview-note">{{ resources.preview_note }}</p>
<h1 class="page-title">{{ resources.page_title | e }}</h1>
{%- if resources.page_description %}<p class="page-description">{{ resources.page_description | e }}</p>{% endif -%}
{%- endblock body_header -%}
{% block codecell -%}
{%- if cell.metadata.get('preview_callout') -%}
<details class="callout"><summary>{{ cell.metadata.preview_callout | e }}</summary>
{{ super() }}
</details>
{%- else -%}{{ super() }}{%- endif -%}
{%- endblock codecell %}
{% block input_group -%}
{%- if cell.metadata.get('preview_echo') == 'false' -%}
{%- else -%}{{ super() }}{%- endif -%}
{%- endblock input_group %}
{% block in_prompt -%}{%- endblock in_prompt %}
"""

CSS = """
body { margin: 0; }
.site-nav { position: fixed; top: 0; left: 0; bottom: 0; width: 15rem; overflow-y: auto; padding: 1rem;
  background: #f6f8fa; border-right: 1px solid #ddd; font: 14px/1.5 system-ui, sans-serif; box-sizing: border-box; }
.site-nav .site-title { font-weight: 700; font-size: 16px; display: block; margin-bottom: .8rem; color: #2780e3; }
.site-nav a { display: block; color: #333; text-decoration: none; padding: .15rem .4rem; border-radius: 4px; }
.site-nav a.current { background: #2780e3; color: white; }
.site-main { margin-left: 15rem; max-width: 58rem; padding: 1rem 2rem; }
.preview-note { font: 13px system-ui, sans-serif; background: #fff8e1; border: 1px solid #f0d58c; padding: .4rem .7rem;
  border-radius: 4px; }
.page-title { font: 700 2.1rem system-ui, sans-serif; margin: 1rem 0 .3rem; }
.page-description { font: 1.1rem system-ui, sans-serif; color: #555; margin-top: 0; }
details.callout { border: 1px solid #cfe3d6; border-left: 4px solid #3fb618; border-radius: 4px; margin: .3rem 0 1rem;
  padding: .2rem .6rem; }
details.callout > summary { cursor: pointer; font: 600 14px system-ui, sans-serif; color: #2d7a14; padding: .3rem 0; }
.jp-InputPrompt, .jp-OutputPrompt { display: none !important; }
.jp-Cell { padding: 0 !important; margin-bottom: .4rem; }
.jp-RenderedHTMLCommon pre { background: #f5f5f5; padding: .5rem .7rem; margin: .4rem 0 1rem; border-radius: 4px; }
"""


def _preview_cell(cell: dict, pages: dict, folder: str = "") -> dict | None:
    "A processed cell (of a page in `folder`) made ready for nbconvert: directives read and removed, links to notebooks made links to pages."
    src = text(cell.get("source"))
    if not src.strip(): return None
    if cell["cell_type"] == "raw": return None  # the frontmatter: shown as the page's title and description
    if cell["cell_type"] == "markdown":
        def to_page(m):
            path = resolve(folder, m[2])
            if path not in pages: return m[0]
            return f"]({posixpath.relpath(pages[path], folder or '.')}{m[3]})"
        src = re.sub(r"\]\((([^)\s#]+\.ipynb))(#[^)\s]*)?\)", lambda m: to_page((m[0], m[1], m[2], m[3] or "")), src)
        top = posixpath.relpath(".", folder) + "/" if folder else ""
        src = re.sub(rf"\]\({re.escape(SITE_URL)}/([\w-]+\.html[^)\s]*)\)", rf"]({top}\1)", src)   # its pages: the preview's
        return {**cell, "source": src}
    d = directives(src)
    if d.get("include") == "false": return None
    meta = dict(cell.get("metadata", {}))
    if d.get("echo") == "false": meta["preview_echo"] = "false"
    body = "\n".join(line for line in src.splitlines() if not line.startswith("#|"))
    return {**cell, "source": body, "metadata": meta}


def sidebar_pages() -> list:
    "The notebooks in the order of the sidebar nbdev wrote (nbs/sidebar.yml)."
    import yaml
    found = []

    def walk(items):
        for it in items:
            if isinstance(it, str): found.append(it)
            elif isinstance(it, dict): walk(it.get("contents", []))
    walk(yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"])
    return found


def preview(cache: Path, out: Path) -> list:
    "Render every processed notebook in `cache` to an HTML page in `out`, with a sidebar; return the pages written."
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    import nbformat
    out.mkdir(parents=True, exist_ok=True)
    order = sidebar_pages()
    nbs = {name: read_nb(cache / name) for name in order}
    fms = {name: frontmatter(nb) for name, nb in nbs.items()}
    pages = {name: page_of(name, fms[name]) for name in order}
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"preview.j2": TEMPLATE})],
                            template_file="preview.j2")
    written = []
    for name in order:
        up = lambda page: posixpath.relpath(page, posixpath.dirname(pages[name]) or ".")   # a page's link from this one
        nav = [f'<a class="site-title" href="{up("index.html")}">{html.escape(fms["index.ipynb"].get("title", "Home"))}</a>']
        for other in order:
            label = fms[other].get("title", other) if other != "index.ipynb" else "Home"
            num = re.match(r"(engine/)?(\d\d)_", other)
            label = (f"{'engine ' if num.group(1) else ''}{num.group(2)} · {label}" if num else label).replace("`", "")
            current = ' class="current"' if other == name else ""
            nav.append(f'<a href="{up(pages[other])}"{current}>{html.escape(label)}</a>')
        nb = dict(nbs[name])
        callouts = {cell.get("id"): title for title, cell in fenced(nb["cells"])[0] if cell.get("id")}
        cells = []
        for c in nb["cells"]:
            src = text(c.get("source")).strip()
            if c["cell_type"] == "markdown" and (SOLUTION_OPEN.match(src) or src == ":::"): continue   # fences: see below
            c = _preview_cell(c, pages, posixpath.dirname(name))
            if c is None: continue
            if c.get("id") in callouts: c["metadata"] = {**c["metadata"], "preview_callout": callouts[c["id"]]}
            cells.append(c)
        nb["cells"] = cells
        for c in nb["cells"]:
            c.pop("has_sd", None); c["metadata"].pop("execution", None)
        node = nbformat.reads(json.dumps(nb), as_version=4)
        body, _ = exporter.from_notebook_node(node, resources={
            "site_css": CSS, "site_nav": "\n".join(nav), "preview_note": PREVIEW_NOTE,
            "page_title": fms[name].get("title", name), "page_description": fms[name].get("description", "")})
        # Quarto's heading ids are lower case (pandoc's rules); nbconvert keeps the heading's case
        body = re.sub(r'(<h[1-6][^>]*\bid="|<a class="anchor-link" href="#)([^"]+)"', lambda m: m[1] + m[2].lower() + '"', body)
        (out / pages[name]).parent.mkdir(parents=True, exist_ok=True)
        (out / pages[name]).write_text(body, encoding="utf-8")
        written.append(out / pages[name])
    if (cache / "images").exists(): shutil.copytree(cache / "images", out / "images", dirs_exist_ok=True)
    return written


def screenshots(site: Path, dest: Path, pages=(("index.html", "site_home.png"), ("attention.html", "site_chapter.png"))):
    "Photograph pages of a preview with headless Chromium (no network: only the preview's own files load)."
    from playwright.sync_api import sync_playwright
    exe = chromium()
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        for html_name, png in pages:
            page.goto((site / html_name).as_uri())
            page.screenshot(path=str(dest / png))
            shots.append(dest / png)
        browser.close()
    return shots


def chromium() -> str:
    "The path of $LLMFS_CHROMIUM, Chromium or Chrome, or a RuntimeError that says none was found."
    for name in (os.environ.get("LLMFS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name): return shutil.which(name)
    raise RuntimeError("no chromium found: on Debian, apt-get install -y chromium")


def main(argv):
    what = argv[1] if len(argv) > 1 else "check"
    if what not in ("check", "preview", "screenshots"): raise SystemExit(__doc__)
    cache = process()
    problems = check(cache)
    for p in problems: print("docs:", p)
    print(f"{len(problems)} problems in {len(notebooks(cache))} processed notebooks ({cache})")
    modules = [m.group(1) for f in notebooks() if f.name[:2].isdigit()
               for m in [re.search(r"#\|\s*default_exp\s+([\w.]+)", f.read_text(encoding="utf-8"))] if m]
    total, missing = undescribed_parameters(modules)
    print(f"not a problem, a to-do: {len(missing)} of the {total} parameters of exported functions and classes have no "
          f"description of their own (a comment after the parameter), so their docs entry shows only name, type and default")
    if what == "check": return 1 if problems else 0
    out = Path(argv[2]) if len(argv) > 2 and what == "preview" else ROOT / "_preview"
    shutil.rmtree(out, ignore_errors=True)
    written = preview(cache, out)
    print(f"preview: {len(written)} pages, open {out / 'index.html'}")
    if what == "screenshots":
        for shot in screenshots(out, NBS / "images"): print("screenshot:", shot)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
