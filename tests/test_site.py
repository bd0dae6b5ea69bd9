"""The docs site: nbdev's processing of every notebook (the steps `nbdev-docs` runs before Quarto), the checks of
tools/site.py on what it makes, checks that those checks can fail, and the nbconvert preview in headless Chromium."""
import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("docs_site", ROOT / "tools" / "site.py")
site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(site)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    "Process the notebooks and render the preview once, in a fresh process, as `python tools/site.py preview` does."
    out = tmp_path_factory.mktemp("preview")
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "site.py"), "preview", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    return run, out


def test_every_notebook_is_processed_and_passes_the_checks(built):
    run, out = built
    report = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, report
    notebooks = len(site.notebooks())
    assert re.search(rf"^0 problems in {notebooks} processed notebooks", run.stdout, flags=re.M), report
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    assert len(pages) == notebooks >= 18, pages
    assert {"index.html", "attention.html", "engine/cli.html", "engine/speed.html"} <= set(pages), pages


def broken_copy(tmp_path):
    "A copy of the notebooks and their processed pages, with one of each problem the checks look for put into page 02."
    nbs, cache = tmp_path / "nbs", tmp_path / "_proc"
    shutil.copytree(ROOT / "_proc", cache)
    nbs.mkdir()
    for nb in site.notebooks():
        (nbs / site.rel(nb)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(nb, nbs / site.rel(nb))
    source = site.read_nb(nbs / "02_gpt_model.ipynb")
    processed = site.read_nb(ROOT / "_proc" / "02_gpt_model.ipynb")
    cells = processed["cells"]
    hidden = next(c for c in source["cells"] if c["cell_type"] == "code" and "hide" in site.directives(site.text(c["source"])))
    sd = next(i for i, c in enumerate(cells) if site.text(c.get("source")).endswith("show_doc(GELU)"))
    del cells[sd]                                                                # an export without its entry
    bad = {"cell_type": "code", "id": "bad00001", "metadata": {}, "execution_count": 1, "source": "x", "outputs": [
        {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []},
        {"output_type": "execute_result", "execution_count": 1, "metadata": {},
         "data": {"text/plain": "<torch.utils.data.DataLoader object at 0x7f3a2c1b9d50>"}}]}
    links = {"cell_type": "markdown", "id": "bad00002", "metadata": {}, "source":
             "![a plot](images/no_such.png) [gone](99_nothing.ipynb) [here](#no-such-heading) "
             "[there](01_attention.ipynb#no-such-heading) [fine](02_gpt_model.ipynb#the-gpt-model)"}
    bad["outputs"].append({"output_type": "stream", "name": "stderr", "text": "Traceback (most recent call last):\n  boom"})
    cells[5:5] = [bad, links]
    opening = next(i for i, c in enumerate(cells) if site.text(c.get("source")).startswith("**You build**"))
    del cells[opening]                                                           # no opening
    exercises = next(i for i, c in enumerate(cells) if site.text(c.get("source")).startswith("## Exercises"))
    del cells[exercises:]                                                        # no exercises at the end
    cells.append(copy.deepcopy(hidden))                                          # a hidden cell left on the page
    cells.append({**copy.deepcopy(hidden), "id": "bad00003", "source": site.cell_code(site.text(hidden["source"]))})  # its code shown
    (cache / "02_gpt_model.ipynb").write_text(json.dumps(processed), encoding="utf-8")
    return nbs, cache


def hidden_id(nbs):
    "The id of notebook 02's first hidden code cell (the one broken_copy shows again)."
    source = site.read_nb(nbs / "02_gpt_model.ipynb")
    return next(c["id"] for c in source["cells"] if c["cell_type"] == "code" and "hide" in site.directives(site.text(c["source"])))


def test_the_checks_find_each_kind_of_problem(built, tmp_path):
    nbs, cache = broken_copy(tmp_path)
    problems = "\n".join(site.check(cache, nbs))
    for expected in ["is still on the page", "`GELU` has no show_doc entry", "an error output (ValueError: boom)",
                     "a bare object repr as its output: <torch.utils.data.DataLoader object at",
                     "image images/no_such.png does not exist", "link 99_nothing.ipynb points at no page",
                     "link #no-such-heading: no such heading on this page",
                     "link 01_attention.ipynb#no-such-heading: no such heading on that page",
                     "the last section is not '## Exercises'", "a traceback printed in its output",
                     "the opening lacks '**You build**' and '**It follows**'"]:
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"
    assert f"the code of hidden cell {hidden_id(nbs)}" in problems, problems
    assert "the-gpt-model" not in problems                     # a good link is not reported
    assert not [p for p in site.check(cache, nbs) if not p.startswith("02_gpt_model")]   # nor are the untouched pages


def test_solutions_are_collapsed_callouts():
    folded = {"jupyter": {"source_hidden": True, "outputs_hidden": True}}   # how JupyterLab keeps a solution closed
    md = lambda src: {"cell_type": "markdown", "source": src, "metadata": folded}
    code = {"cell_type": "code", "source": "x = 1", "outputs": [], "metadata": folded}
    opening = md('::: {.callout-tip collapse="true" title="Solution"}')
    found, errors = site.fenced([opening, code, md(":::")])
    assert (found, errors) == ([("Solution", code)], [])
    shown = {**code, "metadata": {"jupyter": {"source_hidden": True}}}   # its output would show under the question
    assert site.fenced([opening, shown, md(":::")])[1] == [
        "a cell of a collapsed callout shows in JupyterLab (metadata jupyter.source_hidden and outputs_hidden missing): 'x = 1'"]
    assert "shows in JupyterLab" in site.fenced([{**opening, "metadata": {}}, code, md(":::")])[1][0]   # the marker too
    assert site.fenced([opening, code])[1] == ["a collapsed callout is never closed"]
    assert site.fenced([md(":::")])[1] == ["a ':::' closes no callout"]
    chapter = {"cells": [md("**You build** x. **It follows** y."), md("## Exercises"), md("### Exercise 1"), code,
                         md("### Exercise 2"), opening, code, md(":::")]}
    assert site.chapter_problems(chapter) == ["'Exercise 1' has no collapsed solution"]


def test_quarto_anchors_and_directives():
    assert site.slug("A key/value cache (the book's bonus)") == "a-keyvalue-cache-the-books-bonus"
    assert site.slug("`check_config`") == "check_config"
    assert site.directives("#| code-fold: true\n#| code-summary: \"Solution\"\nx = 1") == {
        "code-fold": "true", "code-summary": '"Solution"'}
    assert site.directives("#| export\n#| hide\nx = 1") == {"export": "", "hide": ""}


def test_the_preview_in_a_browser(built, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the preview test drives Chromium with Playwright (pip install -e '.[dev]')")
    run, out = built
    try: exe = site.chromium()
    except RuntimeError as e: pytest.skip(str(e))
    fms = {site.rel(p): site.frontmatter(site.read_nb(ROOT / "_proc" / site.rel(p))) for p in site.notebooks()}
    titles = {name: fm.get("title") for name, fm in fms.items()}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        page.goto((out / "index.html").as_uri())
        assert page.locator("h1.page-title").inner_text() == "llm-from-scratch"
        assert "published site, built by Quarto" in page.locator(".preview-note").inner_text()
        nav = page.locator(".site-nav a:not(.site-title)")
        assert nav.count() == len(titles)
        page.screenshot(path=str(tmp_path / "home.png"))
        for i in range(1, nav.count()):                        # every chapter, reached through the sidebar
            page.goto((out / "index.html").as_uri())
            page.locator(".site-nav a:not(.site-title)").nth(i).click()
            page.wait_for_load_state()
            name = Path(unquote(urlparse(page.url).path)).relative_to(out).as_posix()   # engine/cli.html, attention.html
            nb = next(n for n, fm in fms.items() if site.page_of(n, fm) == name)
            assert page.locator("h1.page-title").inner_text() == titles[nb], name
            assert page.locator(".site-nav a.current").count() == 1
            assert "**You build**" not in page.content() and page.get_by_text("You build", exact=True).count() == 1, name
            solutions = page.locator("details.callout", has=page.locator("summary", has_text="Solution"))
            exercises = page.locator("h3", has_text=re.compile(r"^Exercise")).count()
            assert solutions.count() >= exercises, f"{name}: {exercises} exercises, {solutions.count()} solutions"
            if not name.startswith("engine/"): assert exercises >= 1, f"{name}: a chapter without exercises"   # the book's, or the course's
            if not exercises: continue
            assert page.locator("details.callout[open]").count() == 0, f"{name}: a solution is open"
            first = solutions.first
            assert not first.locator("pre").first.is_visible()             # the code and its output stay hidden...
            if first.locator(".jp-OutputArea").count(): assert not first.locator(".jp-OutputArea").first.is_visible()
            first.locator("summary").click()
            assert first.locator("pre").first.is_visible()                 # ...until the reader opens the solution
            if name == "attention.html": page.screenshot(path=str(tmp_path / "chapter.png"))
        browser.close()
    assert (tmp_path / "home.png").stat().st_size > 20_000 and (tmp_path / "chapter.png").stat().st_size > 20_000
