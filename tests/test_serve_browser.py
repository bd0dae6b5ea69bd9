"The chat page of `llmfs serve`, driven in a real headless Chromium through Playwright (screenshots kept in each test's tmp_path)."
import json
import os
import shutil
import time
import urllib.request

import pytest

from serve_helpers import alpaca_answer, running

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests drive Chromium with Playwright (pip install -e '.[dev]')")


def chromium_path():
    "Debian's chromium (what .ci/run installs), or $LLMFS_CHROMIUM: Playwright's own browser download is not used."
    for candidate in (os.environ.get("LLMFS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)): return path
    return None


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None: pytest.skip("no Chromium found: apt-get install chromium (or set LLMFS_CHROMIUM to a Chromium binary)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


def last_answer(page, timeout=60_000):
    "The text of the last assistant message once it has stopped streaming."
    page.wait_for_selector(".msg.assistant:not(.streaming)", timeout=timeout)
    return page.locator(".msg.assistant").last


def test_the_page_streams_an_answer_and_keeps_the_conversation(browser, serve_models, tmp_path):
    root, gpt = serve_models
    with running("--checkpoint", root / "instruct") as url:
        page = browser.new_page()
        page.goto(url + "/")
        assert page.locator("h1").inner_text() == "instruct" and "Alpaca" in page.locator(".kind").inner_text()
        page.fill("#max-tokens", "12")
        page.fill("#prompt", "Name a fruit.")
        page.click("#send")
        answer = last_answer(page)
        assert answer.inner_text().startswith(alpaca_answer(gpt, "Name a fruit.", 12))   # temperature 0 by default: greedy
        assert "(max tokens reached)" in answer.inner_text()
        page.fill("#prompt", "Name a colour.")
        page.press("#prompt", "Enter")                                  # Enter sends too
        page.wait_for_function("document.querySelectorAll('.msg.assistant').length == 2")
        last_answer(page)
        assert page.locator(".msg.user").all_inner_texts() == ["Name a fruit.", "Name a colour."]
        page.screenshot(path=tmp_path / "instruct.png", full_page=True)
        page.click("#new")
        assert page.locator(".msg").count() == 0
    assert (tmp_path / "instruct.png").stat().st_size > 10_000


def test_stop_ends_the_answer_and_frees_the_model(browser, serve_models, tmp_path):
    with running("--checkpoint", serve_models[0] / "slow") as url:
        page = browser.new_page()
        page.goto(url + "/")
        assert "continues your text" in page.locator(".kind").inner_text()
        page.fill("#max-tokens", "250")
        page.fill("#prompt", "Every effort moves you")
        page.click("#send")
        page.wait_for_function("document.querySelector('.msg.assistant span') && document.querySelector('.msg.assistant span').textContent.length > 0")
        page.click("#stop")
        answer = last_answer(page)
        assert answer.inner_text().startswith("Every effort moves you") and "(stopped)" in answer.inner_text()
        deadline = time.time() + 30
        while (health := json.loads(urllib.request.urlopen(url + "/health").read()))["busy"] and time.time() < deadline: time.sleep(0.05)
        assert (health["busy"], health["cancelled"]) == (False, 1)
        page.screenshot(path=tmp_path / "stopped.png")


def test_the_classifier_page_shows_a_label_and_its_probability(browser, serve_models, tmp_path):
    from llm_from_scratch.engine.checkpoints import load_classifier
    from llm_from_scratch.engine.serve import classify_text
    model, info = load_classifier(serve_models[0] / "classifier")
    probs, _ = classify_text(model, info, "WINNER!! Claim your prize now")
    with running("--checkpoint", serve_models[0] / "classifier") as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.fill("#prompt", "WINNER!! Claim your prize now")
        page.click("#send")
        page.wait_for_selector(".msg.assistant .label")
        assert page.locator(".label").inner_text() == info["labels"][int(probs.argmax())]
        assert page.locator(".msg.assistant .meta").inner_text() == f"probability {100 * float(probs.max()):.1f}%"
        page.screenshot(path=tmp_path / "classifier.png")
    assert (tmp_path / "classifier.png").stat().st_size > 5_000


def test_a_chat_model_page_uses_its_template(browser, serve_models):
    from llm_from_scratch.modern_llms import load_pretrained, load_tokenizer, stream_reply
    folder = serve_models[0] / "qwen3"
    model, tokenizer = load_pretrained(folder), load_tokenizer(folder)
    with running("--model", folder) as url:
        page = browser.new_page()
        page.goto(url + "/")
        assert "chat template" in page.locator(".kind").inner_text()
        page.fill("#max-tokens", "8")
        page.fill("#prompt", "Hello, world!")
        page.click("#send")
        first = last_answer(page).inner_text()
        messages = [{"role": "user", "content": "Hello, world!"}]
        expected = "".join(stream_reply(model, tokenizer, messages, 8, enable_thinking=False))
        assert expected.strip() and first == expected + "\n(max tokens reached)"   # (the note is a block of its own)
