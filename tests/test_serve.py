"`llmfs serve` as a real server on a free loopback port, through the `openai` client and plain HTTP (no network beyond this machine)."
import json
import threading
import time
import urllib.request

import pytest

from llmfs_helpers import llmfs
from serve_helpers import alpaca_answer, get, greedy, post, running

openai = pytest.importorskip("openai", reason="the API tests use the openai client (pip install -e '.[dev]')")
pytest.importorskip("fastapi", reason="llmfs serve needs the serve extra (pip install -e '.[serve]')")

from llm_from_scratch.instruction_tuning import check_judge, query_model   # noqa: E402
from llm_from_scratch.modern_llms import load_pretrained, load_tokenizer, stream_reply   # noqa: E402
from llm_from_scratch.engine.serve import classify_text   # noqa: E402
from llm_from_scratch.text_data import get_tokenizer   # noqa: E402


@pytest.fixture(scope="module")
def instruct(serve_models):
    with running("--checkpoint", serve_models[0] / "instruct") as url: yield url


def test_openai_chat_completions_equal_greedy_generation(instruct, serve_models):
    client = openai.OpenAI(base_url=instruct + "/v1", api_key="unused")
    expected = alpaca_answer(serve_models[1], "Name a fruit.", 10)
    messages = [{"role": "user", "content": "Name a fruit."}]
    answer = client.chat.completions.create(model="instruct", messages=messages, max_tokens=10, temperature=0)
    assert answer.choices[0].message.content == expected and answer.choices[0].finish_reason == "length"
    assert (answer.usage.completion_tokens, answer.model) == (10, "instruct")
    chunks = list(client.chat.completions.create(model="instruct", messages=messages, max_tokens=10, temperature=0, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
    assert len(chunks) > 3 and chunks[-1].choices[0].finish_reason == "length"   # streamed piece by piece
    assert [m.id for m in client.models.list()] == ["instruct"]


def test_bad_requests_get_400_with_a_message(instruct):
    url = instruct + "/v1/chat/completions"
    hi = [{"role": "user", "content": "Hi"}]
    for body, status, message in [
        ({"messages": hi, "max_tokens": 5000}, 400, "max_tokens must be an integer from 1 to 63, not 5000"),
        ({"messages": hi, "temperature": -0.5}, 400, "temperature must be a number from 0 to 2"),
        ({"messages": []}, 400, "messages must be a non-empty list"),
        ({"messages": [{"role": "assistant", "content": "Hi"}]}, 400, "the last message must be the user's"),
        ({"messages": [{"role": "user", "content": "word " * 80}]}, 400, "this model reads at most 64 (its context length)"),
        ({"messages": hi, "model": "gpt-4o"}, 404, "model 'gpt-4o' is not served here; this server has 'instruct'"),
        (b"{not json", 400, "the body must be a JSON object"),
    ]:
        code, reply = post(url, body)
        assert (code, message in reply["error"]["message"]) == (status, True), reply
    code, reply = post(instruct + "/v1/classify", {"input": "Hi"})
    assert code == 400 and "is not a classifier" in reply["error"]["message"]
    client = openai.OpenAI(base_url=instruct + "/v1", api_key="unused")
    with pytest.raises(openai.BadRequestError, match="max_tokens must be an integer from 1 to 63"):
        client.chat.completions.create(model="instruct", messages=hi, max_tokens=999)



def test_a_keyless_server_answers_only_names_of_this_machine(instruct):
    "DNS rebinding: a page of evil.example, whose name now resolves to 127.0.0.1, sends its own Host (and a matching Origin)."
    import http.client
    port = int(instruct.rsplit(":", 1)[1])
    body = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
    def status(host):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/v1/chat/completions", body, {"Host": host, "Origin": f"http://{host}", "Content-Type": "application/json"})
        r = conn.getresponse(); reply = r.read().decode(); conn.close()
        return r.status, reply
    code, reply = status(f"evil.example:{port}")
    assert code == 403 and "answers only requests addressed to this machine" in reply, (code, reply)
    assert status(f"localhost:{port}")[0] == status(f"127.0.0.1:{port}")[0] == 200

def test_notebook_06_judge_client_against_the_server(instruct, serve_models):
    "The book's judge client (Ollama's API, and the OpenAI-compatible one) with a course model as the judge."
    assert check_judge("instruct", instruct + "/api/chat") == "instruct"
    expected = alpaca_answer(serve_models[1], "Score this answer.", 63)   # Ollama's default length here: as long as the context allows
    assert query_model("Score this answer.", model="instruct", url=instruct + "/api/chat") == expected
    assert query_model("Score this answer.", model="instruct", url=instruct + "/v1/chat/completions") == expected


def test_requests_wait_their_turn(instruct, serve_models):
    "Concurrent requests are queued on the one model: each gets exactly its own greedy answer."
    prompts = ["Name a fruit.", "Name a colour.", "Name a city.", "Name a river."]
    answers = {}
    def ask(p):
        code, body = post(instruct + "/v1/chat/completions", {"messages": [{"role": "user", "content": p}], "max_tokens": 20, "temperature": 0})
        answers[p] = json.loads(body)["choices"][0]["message"]["content"]
    threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
    for t in threads: t.start()
    for t in threads: t.join(60)
    assert answers == {p: alpaca_answer(serve_models[1], p, 20) for p in prompts}
    assert get(instruct + "/health")["most_at_once"] == 1   # never two generations on the model at once


def test_completions_continue_a_pretrained_gpt(serve_models):
    root, gpt = serve_models
    tok = get_tokenizer()
    expected = tok.decode(greedy(gpt, tok.encode("Every effort moves you"), 12, 64))
    with running("--checkpoint", root / "base") as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        done = client.completions.create(model="base", prompt="Every effort moves you", max_tokens=12, temperature=0)
        assert done.choices[0].text == expected
        streamed = client.completions.create(model="base", prompt="Every effort moves you", max_tokens=12, temperature=0, stream=True)
        assert "".join(c.choices[0].text for c in streamed) == expected
        seeded = [client.completions.create(model="base", prompt="Hello", max_tokens=12, temperature=1.0, seed=s).choices[0].text
                  for s in (1, 1, 2)]
        assert seeded[0] == seeded[1] != seeded[2]   # a seed makes sampling reproducible
        assert get(url + "/health")["kind"] == "base"


def test_a_chat_model_answers_in_its_template(serve_models):
    folder = serve_models[0] / "qwen3"
    model, tokenizer = load_pretrained(folder), load_tokenizer(folder)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello, world!"}]
    with running("--model", folder) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        answer = client.chat.completions.create(model="qwen3", messages=messages, max_tokens=12, temperature=0)
        assert answer.choices[0].message.content == "".join(stream_reply(model, tokenizer, messages, 12, enable_thinking=False))
        thinking = client.chat.completions.create(model="qwen3", messages=messages, max_tokens=12, temperature=0,
                                                  extra_body={"enable_thinking": True})
        assert thinking.choices[0].message.content == "".join(stream_reply(model, tokenizer, messages, 12, enable_thinking=True))


def test_a_classifier_labels_texts_and_an_api_key_guards_it(serve_models):
    from llm_from_scratch.engine.checkpoints import load_classifier
    model, info = load_classifier(serve_models[0] / "classifier")
    with running("--checkpoint", serve_models[0] / "classifier", "--api-key", "s3cret") as url:
        assert get(url + "/health")["kind"] == "classifier"                    # /health and the page need no key
        code, reply = post(url + "/v1/classify", {"input": "You won a prize!"})
        assert code == 401 and "needs an API key" in reply["error"]["message"]
        code, reply = post(url + "/v1/classify", {"input": ["You won a prize!", "See you at 6"]}, key="s3cret")
        labels = [d["label"] for d in json.loads(reply)["data"]]
        assert labels == [info["labels"][int(classify_text(model, info, t)[0].argmax())] for t in ("You won a prize!", "See you at 6")]
        code, reply = post(url + "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}, key="s3cret")
        assert code == 400 and "is a classifier: POST /v1/classify" in reply["error"]["message"]


def test_a_client_that_leaves_frees_the_model(serve_models):
    "A stream dropped after a few tokens stops its generation at once; the next request runs."
    with running("--checkpoint", serve_models[0] / "slow") as url:
        body = json.dumps({"prompt": "Every effort moves you", "max_tokens": 250, "temperature": 0, "stream": True}).encode()
        request = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
        response = urllib.request.urlopen(request, timeout=60)
        events = [response.readline() for _ in range(6)]   # a few streamed pieces
        assert any(e.startswith(b"data: {") for e in events)
        response.close()                                   # the client leaves mid-answer
        deadline = time.time() + 30
        while (health := get(url + "/health"))["busy"] and time.time() < deadline: time.sleep(0.05)
        assert (health["busy"], health["replies"], health["cancelled"]) == (False, 1, 1)   # stopped early, not run to 250 tokens
        code, reply = post(url + "/v1/completions", {"prompt": "Hello", "max_tokens": 3, "temperature": 0})
        assert code == 200 and json.loads(reply)["usage"]["completion_tokens"] == 3
        body = json.dumps({"prompt": "Every effort moves you", "max_tokens": 250, "temperature": 0}).encode()   # not streamed
        with pytest.raises(OSError):   # the client gives up waiting and leaves
            urllib.request.urlopen(urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"}), timeout=0.5)
        deadline = time.time() + 30
        while (health := get(url + "/health"))["busy"] and time.time() < deadline: time.sleep(0.05)
        assert (health["busy"], health["replies"], health["cancelled"]) == (False, 3, 2)


def test_serve_refuses_in_one_line(serve_models):
    for args, message in [(["--checkpoint", serve_models[0] / "base", "--host", "0.0.0.0"], "would let other machines use the model: give an --api-key"),
                          (["--checkpoint", serve_models[0] / "nothing-here"], f"llmfs: error: {serve_models[0] / 'nothing-here' / 'config.json'} does not exist"),
                          (["--model", "no such model"], "--model no such model: 'no such model' is neither an existing folder")]:
        r = llmfs("serve", *args)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    with running("--checkpoint", serve_models[0] / "base") as url:
        port = url.rsplit(":", 1)[1]
        r = llmfs("serve", "--checkpoint", serve_models[0] / "base", "--port", port)
        assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr, r.stderr


def test_the_server_bounds_what_a_request_may_ask(instruct, serve_models):
    "A seed of 2**64 was a 500, a body nested 50,000 deep a 500, a 30 MB body was read whole."
    url = instruct + "/v1/chat/completions"
    hi = [{"role": "user", "content": "Hi"}]
    code, reply = post(url, {"messages": hi, "max_tokens": 2, "seed": 2**64})
    assert code == 400 and "seed must be an integer from 0 to 2**63 - 1" in reply["error"]["message"], reply
    code, reply = post(url, b'{"messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    assert code == 400 and reply["error"]["message"] == "the body must be a JSON object", reply
    import http.client
    conn = http.client.HTTPConnection(instruct.split("//")[1], timeout=60)   # announces 30 MB, sends none: refused on the header
    conn.putrequest("POST", "/v1/chat/completions"); conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(30 * 2**20)); conn.endheaders()
    r = conn.getresponse(); reply = json.loads(r.read()); conn.close()
    assert r.status == 413 and "larger than 4 MB" in reply["error"]["message"], reply
    assert get(instruct + "/health")["status"] == "ok"


def test_classify_takes_a_bounded_list(serve_models):
    with running("--checkpoint", serve_models[0] / "classifier") as url:
        code, reply = post(url + "/v1/classify", {"input": ["a text"] * 65})
        assert code == 400 and "input holds 65 texts: at most 64" in reply["error"]["message"], reply
        code, reply = post(url + "/v1/classify", {"input": ["a text"] * 64})
        assert code == 200 and len(json.loads(reply)["data"]) == 64


def test_classifying_keeps_the_event_loop_free(serve_models):
    "/v1/classify ran the model on the event loop: /health stalled 14 s behind 20,000 texts. Now it answers while a classification runs."
    import socket
    import uvicorn
    from llm_from_scratch.engine.serve import create_app, load_served_model
    served, release, started = load_served_model(serve_models[0] / "classifier"), threading.Event(), threading.Event()
    label = served.classify
    def slow_classify(text):   # holds the classification until the test has seen /health answer
        started.set()
        assert release.wait(60)
        return label(text)
    served.classify = slow_classify
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(served), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if server.started: break
            time.sleep(0.1)
        result = {}
        worker = threading.Thread(target=lambda: result.update(reply=post(url + "/v1/classify", {"input": ["free cash now", "see you"]})))
        worker.start()
        assert started.wait(60)                               # the classification is running ...
        health = get(url + "/health")                          # ... and the server still answers
        assert health["status"] == "ok" and health["busy"] is True
        release.set()
        worker.join(60)
        status, body = result["reply"]
        assert status == 200 and [d["index"] for d in json.loads(body)["data"]] == [0, 1]
    finally:
        release.set()
        server.should_exit = True
