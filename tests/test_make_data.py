"`llmfs make-data` end to end (nbs/engine/08_make_data, notebook 06's recipes) against a stand-in LLM server in this process."
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from llmfs_helpers import LLMFS, llmfs
from llm_from_scratch.engine.checkpoints import save_instruct_model
from llm_from_scratch.engine.cli import main
from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
from llm_from_scratch.instruction_tuning import (MAGPIE_QUERY, StubJudge, passive_prompt, preference_entry, preference_prompt,
                                                 response_reflection_prompt)
from llm_from_scratch.text_data import DATA_FILES, download

OLLAMA_OPTIONS = {"seed": 123, "temperature": 0.0, "num_ctx": 2048}


def instruction_data(n):
    "The course's first `n` instruction entries."
    return json.loads(download(DATA_FILES["instruction-data.json"]).read_text(encoding="utf-8"))[:n]


def rewrite(prompt):
    "The stand-in's rewrite: a marked polite or impolite version."
    return ("Kindly note: " if "more polite" in prompt else "Obviously, ") + prompt[-40:]


class Magpie(StubJudge):
    "A stand-in whose Magpie instruction depends on the seed sent; seed 125 gets an empty reply, 126 a near duplicate of 123's."
    QUESTIONS = ["Name a yellow fruit.", "What is 2 + 2?", "", "Name a yellow fruit!", "Define entropy.", "Who wrote Hamlet?",
                 "List three prime numbers.", "Translate 'cat' into French."]

    def __init__(self, hold_at=None):
        super().__init__(self.answer)
        self.hold_at, self.holding, self.release = hold_at, threading.Event(), threading.Event()
        self.server.handle_error = lambda request, address: None   # the held reply finds its client gone: not an error here

    def answer(self, prompt):
        if len(self.requests) == self.hold_at:   # the request that a kill -9 interrupts: no reply until released
            self.holding.set()
            self.release.wait(60)
        body = self.requests[-1][1]
        if prompt == MAGPIE_QUERY:
            question = self.QUESTIONS[body["options"]["seed"] - 123]
            return f"\n{question}\nA second line, not kept." if question else "  \n"
        return f"The answer to: {prompt}"


def test_preferences_are_the_books_format_and_feed_llmfs_dpo(tmp_path):
    data = instruction_data(12)
    (tmp_path / "data.json").write_text(json.dumps(data))
    with StubJudge(rewrite) as llm:
        r = llmfs("make-data", "preferences", "--data", tmp_path / "data.json", "--judge-url", llm.url + "/api/chat",
                  "--out", tmp_path / "pref.json")
        assert r.returncode == 0, r.stderr
        sent = [body for _, body in llm.requests]
    assert f"Wrote 12 entries to {tmp_path / 'pref.json'}" in r.stdout and "12 requests sent, 0 replies" in r.stdout
    ask = lambda prompt, **options: rewrite(prompt)            # what the stand-in answered, asked directly
    expected = [preference_entry(e, ask, i) for i, e in enumerate(data)]
    assert json.loads((tmp_path / "pref.json").read_text()) == expected
    assert [b["messages"] for b in sent] == [[{"role": "user", "content": preference_prompt(e, "polite" if p["chosen"] != e["output"] else "impolite")}]
                                             for e, p in zip(data, expected)]
    assert all(b["model"] == "llama3" and b["options"] == OLLAMA_OPTIONS for b in sent)
    assert {p["chosen"] == e["output"] for e, p in zip(data, expected)} == {True, False}   # both sides drawn
    torch.manual_seed(123)
    save_instruct_model(tmp_path / "instruct", GPTModel(GPT_CONFIG_TINY).eval(), base_model="tiny")
    r = llmfs("dpo", "--checkpoint", tmp_path / "instruct", "--data", tmp_path / "pref.json", "--epochs", 1, "--batch-size", 4,
              "--eval-freq", 2, "--eval-iter", 1, "--max-new-tokens", 2, "--out", tmp_path / "dpo", "--no-fast-linear")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "dpo" / "dpo.json").is_file()


def test_instructions_survive_a_kill_and_continue_without_asking_twice(tmp_path):
    out, cache = tmp_path / "magpie.json", tmp_path / "magpie.json.cache.jsonl"
    with Magpie(hold_at=7) as llm:   # entries 0-2 done (2 empty), the 4th instruction asked: then kill -9
        args = ["make-data", "instructions", "--n", 8, "--judge-url", llm.url + "/api/chat", "--out", out]
        proc = subprocess.Popen([*LLMFS, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert llm.holding.wait(120), "the 7th request never came"
        proc.kill()
        proc.communicate(timeout=60)
        llm.release.set()
    assert proc.returncode == -9 and not out.exists()
    assert len(cache.read_text().splitlines()) == 6              # every reply that arrived was kept
    with Magpie() as llm:                                        # the same command again, on a new server
        r = llmfs("make-data", "instructions", "--n", 8, "--judge-url", llm.url + "/api/chat", "--out", out)
        assert r.returncode == 0, r.stderr
        resumed = [body for _, body in llm.requests]
    assert len(resumed) == 15 - 6                                # 8 instructions + 7 answers in all, 6 of them kept
    assert resumed[0]["messages"] == [{"role": "user", "content": "Name a yellow fruit!"}]   # the answer the kill cut off
    assert (resumed[0]["options"]["seed"], resumed[0]["options"]["temperature"]) == (126, 0.0)
    assert resumed[1]["messages"] == [{"role": "assistant", "content": MAGPIE_QUERY}]         # then the next instruction
    assert (resumed[1]["options"]["seed"], resumed[1]["options"]["temperature"]) == (127, 1.0)
    with Magpie() as llm:                                        # one uninterrupted run gives the same file
        whole = llmfs("make-data", "instructions", "--n", 8, "--judge-url", llm.url + "/api/chat", "--out", tmp_path / "whole.json")
        assert whole.returncode == 0, whole.stderr
    written = json.loads(out.read_text())
    assert written == json.loads((tmp_path / "whole.json").read_text())
    assert [e["instruction"] for e in written] == [q for q in Magpie.QUESTIONS if q]
    assert written[1] == {"instruction": "What is 2 + 2?", "input": "", "output": "The answer to: What is 2 + 2?"}
    assert "Dropped 1 of 8: the reply was empty (entries 2)" in r.stdout
    assert "Near-duplicate instructions (similarity >= 0.9): 1 pairs, kept" in r.stdout
    assert "entries 0 and 2 of the output: 'Name a yellow fruit.' / 'Name a yellow fruit!'" in r.stdout
    with Magpie() as llm:
        r = llmfs("make-data", "instructions", "--n", 8, "--judge-url", llm.url + "/api/chat", "--out", tmp_path / "dedup.json",
                  "--cache", cache, "--remove-duplicates")
        assert r.returncode == 0 and not llm.requests, r.stderr   # all from the cache
    assert [e["instruction"] for e in json.loads((tmp_path / "dedup.json").read_text())] == [q for q in Magpie.QUESTIONS if q and q != "Name a yellow fruit!"]


def test_reflection_and_passive_write_what_the_replies_say(tmp_path):
    data = instruction_data(4)
    (tmp_path / "data.json").write_text(json.dumps(data))
    critic = lambda prompt: "1. Vague.\n2. [Better Answer] A better answer. [End]" if data[1]["instruction"] in prompt else "It is fine."
    with StubJudge(critic) as llm:
        r = llmfs("make-data", "refine-responses", "--data", tmp_path / "data.json", "--judge-url", llm.url + "/v1/chat/completions",
                  "--out", tmp_path / "refined.json")
        assert r.returncode == 0, r.stderr
        sent = [body for _, body in llm.requests]
    refined = json.loads((tmp_path / "refined.json").read_text())
    assert refined == [data[0], {**data[1], "output": "A better answer."}, data[2], data[3]]
    assert "Kept 3 of 4 as they were" in r.stdout
    system, prompt = response_reflection_prompt(data[1])
    assert sent[1]["messages"] == [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    assert (sent[1]["seed"], sent[1]["temperature"], sent[1]["stream"]) == (123, 0.0, True)   # OpenAI's fields
    with StubJudge(lambda prompt: "" if data[2]["output"] in prompt else "It was done.") as llm:
        r = llmfs("make-data", "passive", "--data", tmp_path / "data.json", "--judge", "ollama:llama3", "--judge-url",
                  llm.url + "/api/chat", "--out", tmp_path / "passive.json")
        assert r.returncode == 2 and "not allowed with argument" in r.stderr        # one way to name the server
        r = llmfs("make-data", "passive", "--data", tmp_path / "data.json", "--judge-url", llm.url + "/api/chat",
                  "--out", tmp_path / "passive.json")
        assert r.returncode == 0, r.stderr
        assert [b["messages"][0]["content"] for _, b in llm.requests] == [passive_prompt(e["output"]) for e in data]
    assert json.loads((tmp_path / "passive.json").read_text()) == [{**e, "output_2": "It was done."} for i, e in enumerate(data) if i != 2]
    assert "Dropped 1 of 4: the reply was empty (entries 2)" in r.stdout


@pytest.fixture
def garbage_server():
    "A server that lists the model llama3 but answers every chat request with bytes that are not a chat reply."
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args): pass
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
            self.wfile.write(b'{"models": [{"name": "llama3:latest"}]}')
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
            self.wfile.write(b'{"message": "not a message"}\n')
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/chat"
    server.shutdown()


def check_one_line_error(status, stderr, message):
    "Exit status 2 and one error line containing `message`, after at most the progress bar of the entries asked so far."
    assert status == 2 and "Traceback" not in stderr, (status, stderr)
    lines = stderr.strip().splitlines()
    assert message in lines[-1] and lines[-1].startswith("llmfs: error: "), stderr
    assert all("entry/s" in line for line in lines[:-1]), stderr


def test_bad_servers_and_bad_input_are_one_line_and_nothing_is_written(tmp_path, garbage_server, capsys):
    "In this process (llmfs's main), to keep the suite short: the other tests run the command as a process."
    data = tmp_path / "data.json"
    data.write_text(json.dumps(instruction_data(3)))
    def one_line_error(args, message):
        status = main(["make-data", *map(str, args)])
        check_one_line_error(status, capsys.readouterr().err, message)
    run = lambda *args: args
    one_line_error(run("passive", "--data", data, "--judge-url", "http://127.0.0.1:9/api/chat", "--out", tmp_path / "o.json"),
                   "no model server answers at http://127.0.0.1:9/api/tags")
    one_line_error(run("passive", "--data", data, "--judge-url", garbage_server, "--out", tmp_path / "o.json"),
                   "sent JSON that is not a chat reply")
    with StubJudge() as llm:
        url = llm.url + "/api/chat"
        one_line_error(run("passive", "--data", data, "--judge-url", url, "--judge-model", "llama9", "--out", tmp_path / "o.json"),
                       "has no model 'llama9'")
        one_line_error(run("instructions", "--judge-url", url, "--out", tmp_path / "o.json"), "needs --n")
        one_line_error(run("instructions", "--n", 3, "--data", data, "--judge-url", url), "--data is for the other kinds")
        one_line_error(run("passive", "--n", 3, "--data", data, "--judge-url", url), "--n is for make-data instructions")
        one_line_error(run("passive", "--data", tmp_path / "missing.json", "--judge-url", url), "no such file")
        (tmp_path / "bad.json").write_text('[{"instruction": "no output"}]')
        one_line_error(run("passive", "--data", tmp_path / "bad.json", "--judge-url", url, "--out", tmp_path / "o.json"), "output")
        one_line_error(run("passive", "--data", data, "--judge-url", url, "--out", tmp_path), "is a folder, not a file")
        one_line_error(run("passive", "--data", data, "--judge-url", url, "--out", tmp_path / "o.json", "--cache", tmp_path),
                       "--cache " + str(tmp_path) + " is a folder, not a file")
        one_line_error(run("passive", "--data", data, "--judge-url", url, "--out", tmp_path / "o.json", "--duplicate-threshold", 0),
                       "--duplicate-threshold must be in (0, 1]")
        (tmp_path / "o.json.cache.jsonl").write_text('{"key": "a", "reply": "b"}\nnot json\n{"key": "c", "reply": "d"}\n')
        one_line_error(run("passive", "--data", data, "--judge-url", url, "--out", tmp_path / "o.json"), "line 2 is not a reply of this cache")
        assert not llm.requests
    assert not (tmp_path / "o.json").exists()
