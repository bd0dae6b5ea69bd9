"""Faults and bad inputs, round 2 (issue 28): one line where a traceback was, surprises made explicit, user URLs checked,
one rule for the text users give, adapters that carry their checksums.

The command-line tests run `llmfs` as a separate process, offline, on the tiny config.
"""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from llm_from_scratch.pretraining import CheckpointError

from llmfs_helpers import FAST, copy_run, env_with, llmfs, one_line_error


# ---- round 2: one line where a traceback was

@pytest.mark.parametrize("change, message", [
    ({"drop_rate": "abc"}, "drop_rate must be a number in [0, 1), not 'abc'"),
    ({"drop_rate": None}, "drop_rate must be a number in [0, 1), not None"),
    ({"vocab_size": True}, "vocab_size must be a positive integer, not True"),
    ({"qkv_bias": "no"}, "qkv_bias must be true or false, not 'no'"),
    ({"context_length": 10**12}, "context_length 1,000,000,000,000 is too long")])
def test_a_config_of_the_wrong_kind_is_one_line(full_run, tmp_path, change, message):
    copy_run(full_run[0], tmp_path)
    (tmp_path / "manifest.json").unlink()   # a hand-edited folder, as before manifests
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
    one_line_error(llmfs("generate", "--checkpoint", tmp_path, "--prompt", "Hi", "--max-new-tokens", 2), message)


def test_an_empty_data_file_is_one_line(full_run, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    one_line_error(llmfs("finetune-classifier", "--checkpoint", full_run[0], "--data", tmp_path / "empty.csv", "--out", tmp_path / "clf"),
                   "the file is empty")


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_serve_refuses_a_port_out_of_range(full_run, port):
    pytest.importorskip("fastapi")
    one_line_error(llmfs("serve", "--checkpoint", full_run[0], "--port", port), f"--port must be from 0 (any free port) to 65535, not {port}")


def test_a_resume_with_a_damaged_generator_state_is_refused(full_run, tmp_path):
    "A 3-byte RNG state was refused by torch only after the model had loaded, as a traceback."
    copy_run(full_run[0], tmp_path)
    (tmp_path / "manifest.json").unlink()
    saved = torch.load(tmp_path / "training_state.pt", weights_only=True)
    saved["state"]["rng"]["cpu"] = torch.zeros(3, dtype=torch.uint8)
    torch.save(saved, tmp_path / "training_state.pt")
    one_line_error(llmfs("pretrain", "--resume", tmp_path, "--epochs", 3, "--unchecked"), "state.rng is not a random generator state")


@pytest.fixture
def judge_replying():
    "A server that answers every request with the bytes it is given; its chat URL."
    reply = {}
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self): self.do_POST()
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
            self.wfile.write(reply["body"])
        def log_message(self, *args): pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    def url(body):
        reply["body"] = body
        return f"http://127.0.0.1:{server.server_address[1]}"
    yield url
    server.shutdown()


@pytest.mark.parametrize("body, path, message", [
    (b"\xff\xfe not utf-8\n", "/api/chat", "sent bytes that are not UTF-8 text"),
    (b'{"message": "87"}\n', "/api/chat", "sent JSON that is not a chat reply"),
    (b'data: {"choices": ["x"]}\n\n', "/v1/chat/completions", "sent JSON that is not a chat reply"),
    (b'{"message": {"content": 87}}\n', "/api/chat", "sent JSON that is not a chat reply")])
def test_a_judge_that_answers_garbage_is_one_line(judge_replying, body, path, message):
    from llm_from_scratch.instruction_tuning import JudgeError, query_model
    with pytest.raises(JudgeError, match=message): query_model("Score this.", url=judge_replying(body) + path)


def test_a_judge_whose_model_list_is_garbage_is_one_line(judge_replying):
    from llm_from_scratch.instruction_tuning import JudgeError, check_judge
    with pytest.raises(JudgeError, match="not as an Ollama or OpenAI-compatible server"): check_judge(url=judge_replying(b"[1, 2]") + "/api/chat")


def test_adapters_truncated_or_without_their_base_are_one_line(tmp_path):
    from llm_from_scratch.engine.checkpoints import load_adapted, save_checkpoint
    from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
    from llm_from_scratch.lora import replace_linear_with_lora, save_lora
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "base", GPTModel(GPT_CONFIG_TINY))
    model = GPTModel(GPT_CONFIG_TINY)
    for p in model.parameters(): p.requires_grad = False
    replace_linear_with_lora(model, rank=2, alpha=4)
    save_lora(tmp_path / "adapters", model, base_model=str(tmp_path / "base"))
    load_adapted(tmp_path / "adapters")   # whole: it loads
    data = (tmp_path / "adapters" / "adapters.safetensors").read_bytes()
    (tmp_path / "adapters" / "adapters.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="adapters.safetensors is corrupt or truncated"): load_adapted(tmp_path / "adapters")
    (tmp_path / "adapters" / "adapters.safetensors").write_bytes(data)
    (tmp_path / "base").rename(tmp_path / "moved")
    with pytest.raises(CheckpointError, match="names the base model .*base, which does not exist"): load_adapted(tmp_path / "adapters")


def test_a_checkpoint_without_its_manifest_is_used_with_a_warning(full_run, tmp_path):
    "With manifest.json deleted, flipped bytes loaded silently; now every command says the files go unchecked."
    copy_run(full_run[0], tmp_path)
    (tmp_path / "manifest.json").unlink()
    r = llmfs("generate", "--checkpoint", tmp_path, "--prompt", "Every effort", "--max-new-tokens", 3, "--temperature", 0)
    assert r.returncode == 0, r.stderr
    warnings_said = [line for line in r.stderr.splitlines() if line.startswith("llmfs: warning:")]
    assert len(warnings_said) == 1 and "has no manifest.json: its files are used unchecked" in warnings_said[0], r.stderr
    r = llmfs("generate", "--checkpoint", full_run[0], "--prompt", "Every effort", "--max-new-tokens", 3, "--temperature", 0)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


# ---- silent surprises (item 8), friction (items 12, 16, 17)

def test_dtype_applies_to_a_checkpoint_in_generate_chat_and_serve(full_run, monkeypatch, capsys):
    "`generate --dtype float16` on a checkpoint ran in float32 without a word; now the weights are in the dtype asked for."
    from llm_from_scratch.engine import cli
    from llm_from_scratch.engine.serve import load_served_model
    seen = []
    monkeypatch.setattr(cli, "print_stream", lambda model, *a, **k: seen.append(next(model.parameters()).dtype) or "")
    for dtype, expected in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        assert cli.main(["generate", "--checkpoint", str(full_run[0]), "--prompt", "Every", "--dtype", dtype, "--no-fast-linear"]) == 0
        assert seen[-1] == expected
    for fast, expected in ((False, torch.float32), (True, torch.bfloat16)):   # auto: bfloat16 where this CPU multiplies it fast
        monkeypatch.setattr(cli, "bf16_verdict", lambda device, fast=fast: (fast, "a stand-in measurement"))
        assert cli.main(["generate", "--checkpoint", str(full_run[0]), "--prompt", "Every", "--no-fast-linear"]) == 0
        assert seen[-1] == expected
    served = load_served_model(full_run[0], dtype=torch.bfloat16)
    assert {p.dtype for p in served.model.parameters()} == {torch.bfloat16}


def test_classify_reads_standard_input_only_with_a_lone_dash(full_run):
    "`classify ... - extra` classified the literal text '-'."
    one_line_error(llmfs("classify", "--checkpoint", full_run[0], "-", "extra"), "'-' reads the texts from standard input: give it alone")


def test_prepare_data_skips_a_fifo_in_a_folder(tmp_path):
    "A FIFO in the data folder made prepare-data wait forever on its read."
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("Every effort moves you. " * 200)
    os.mkfifo(tmp_path / "data" / "pipe.txt")
    r = llmfs("prepare-data", tmp_path / "data", "--out", tmp_path / "shards", timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "shards" / "index.json").read_text())["num_files"] == 1


@pytest.mark.parametrize("damage", [
    lambda index: index["shards"][0].update(tokens="1,000"),
    lambda index: index["shards"][0].update(file="../../etc/passwd"),
    lambda index: index.update(shards={"a": 1}),
])
def test_a_damaged_shard_index_says_so(tmp_path, damage):
    "A corrupted index.json gave 'too short for --context-length ... Cannot specify ',' with 's''."
    from llm_from_scratch.engine.shards import ShardDataset, prepare_shards
    (tmp_path / "a.txt").write_text("Every effort moves you. " * 400)
    prepare_shards([tmp_path / "a.txt"], tmp_path / "shards", shard_tokens=500, workers=1, progress=False, log=lambda *a: None)
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    damage(index)
    (tmp_path / "shards" / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="index.json is damaged: its shards are not a list of"):
        ShardDataset(tmp_path / "shards", 16)
    r = llmfs("pretrain", *FAST, "--data", tmp_path / "shards", "--out", tmp_path / "run")
    one_line_error(r, "index.json is damaged")


def test_an_offline_hub_fails_at_once_in_words(tmp_path):
    "Without a network, huggingface_hub retried for 25 s (11 lines) before one line named LocalEntryNotFoundError."
    import socket
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]   # nothing listens there
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path / "hf"))
    for args in (["generate", "--model", "gpt2", "--prompt", "Hi"], ["chat", "--model", "Qwen/Qwen3-0.6B", "--prompt", "Hi"]):
        r = llmfs(*args, env=env)
        one_line_error(r, "this machine cannot reach the hub, and its cache has no copy")
        assert "Retrying" not in r.stderr


def test_ctrl_c_during_an_answer_stops_that_answer_not_the_chat(monkeypatch, capsys):
    from llm_from_scratch.engine import cli
    typed, answered = iter(["first", "second", ""]), []
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    def answer(message):
        if message == "first": raise KeyboardInterrupt
        answered.append(message)
    assert cli._converse(None, answer, "Chatting") == 0
    assert answered == ["second"] and "(answer stopped" in capsys.readouterr().out


def test_the_help_lists_each_command_once_and_states_the_decoding_rule(tmp_path):
    r = llmfs("--help")
    listed = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("    ") and line[4] != " "]   # the commands' list, one per line
    assert r.returncode == 0 and "{pretrain," not in r.stdout and listed.count("pretrain") == 1 and "serve" in listed, r.stdout
    assert "samples by default" in r.stdout and "decode greedily" in r.stdout
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--out", tmp_path / "run")
    assert r.returncode == 0 and "to 1 epoch" in r.stdout and "1 epochs" not in r.stdout, r.stdout


def test_chat_on_a_plain_gpt_suggests_finetuning_that_checkpoint(full_run):
    one_line_error(llmfs("chat", "--checkpoint", full_run[0], "--prompt", "Hi"),
                   f"llmfs finetune-instruct --checkpoint {full_run[0]} --out DIR")


# ---- downloads of user URLs (item 11)

@pytest.fixture
def text_server():
    "A local HTTP server of changeable pages: path -> (content type, body)."
    pages = {}
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            ctype, body = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args): pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", pages
    server.shutdown()


def test_a_web_page_in_place_of_a_text_is_refused_and_never_cached(text_server, tmp_path):
    "A 200 HTML error page was cached and trained on."
    base, pages = text_server
    pages["/story.txt"] = ("text/html; charset=utf-8", b"<html><body>Sign in to see this file</body></html>")
    env = env_with(LLM_FROM_SCRATCH_CACHE=str(tmp_path / "cache"))
    r = llmfs("pretrain", *FAST, "--data", f"{base}/story.txt", "--out", tmp_path / "run", env=env)
    one_line_error(r, "the server sent a web page (text/html), not story.txt")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_url_checksum_is_checked_and_refresh_data_downloads_again(text_server, tmp_path):
    "The cache was never refreshed, and nothing checked a user URL's bytes."
    base, pages = text_server
    story = ("Every effort moves you towards the story. " * 200).encode()
    pages["/story.txt"] = ("text/plain", story)
    env = env_with(LLM_FROM_SCRATCH_CACHE=str(tmp_path / "cache"))
    wrong = "0" * 64
    r = llmfs("pretrain", *FAST, "--data", f"{base}/story.txt#sha256={wrong}", "--out", tmp_path / "a", env=env)
    errors = [line for line in r.stderr.splitlines() if line.startswith("llmfs: error:")]   # (besides the download's progress bar)
    assert r.returncode == 2 and len(errors) == 1 and f"checksum mismatch: expected sha256 {wrong}" in errors[0], r.stderr
    one_line_error(llmfs("pretrain", *FAST, "--data", f"{base}/story.txt#sha256=xyz", "--out", tmp_path / "a", env=env),
                   "#sha256= must be followed by the file's 64 hex digits")
    digest = __import__("hashlib").sha256(story).hexdigest()
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--data", f"{base}/story.txt#sha256={digest}", "--out", tmp_path / "b", env=env)
    assert r.returncode == 0, r.stderr
    cached = [p for p in (tmp_path / "cache").rglob("story.txt")]
    assert len(cached) == 1 and cached[0].read_bytes() == story
    plain = f"{base}/story.txt"
    assert llmfs("pretrain", *FAST, "--epochs", 1, "--data", plain, "--out", tmp_path / "c", env=env).returncode == 0
    copy = [p for p in (tmp_path / "cache").rglob("story.txt") if p != cached[0]][0]
    pages["/story.txt"] = ("text/plain", story.replace(b"story", b"tale!"))
    assert llmfs("pretrain", *FAST, "--epochs", 1, "--data", plain, "--out", tmp_path / "d", env=env).returncode == 0
    assert copy.read_bytes() == story                       # the cached copy, as before
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--data", plain, "--refresh-data", "--out", tmp_path / "e", env=env)
    assert r.returncode == 0 and copy.read_bytes() == pages["/story.txt"][1], r.stderr


# ---- one text, one tokenisation (item 10)

def training_tokens(r):
    "The token count that `llmfs pretrain` prints for a text run."
    return int(r.stdout.split(" (")[2].split(" tokens;")[0].replace(",", ""))   # Training a ...-parameter GPT (...) on FILE (N tokens; ...


def test_a_literal_end_of_text_is_plain_text_unless_asked_and_prepare_data_agrees(tmp_path):
    "pretrain --data read a literal <|endoftext|> as the token and prepare-data as text: now both read text, --eot-in-data the token."
    from llm_from_scratch.text_data import get_tokenizer
    doc = "Every effort moves you.\n" * 150   # (a newline on each side of the literal: no merge across it)
    (tmp_path / "a.txt").write_text(doc + "<|endoftext|>" + doc)
    literal = len(get_tokenizer().encode("<|endoftext|>", disallowed_special=()))
    assert literal > 1
    plain = llmfs("pretrain", *FAST, "--epochs", 1, "--data", tmp_path / "a.txt", "--out", tmp_path / "plain")
    token = llmfs("pretrain", *FAST, "--epochs", 1, "--data", tmp_path / "a.txt", "--eot-in-data", "--out", tmp_path / "token")
    assert plain.returncode == 0 and token.returncode == 0, (plain.stderr, token.stderr)
    assert training_tokens(plain) == training_tokens(token) + literal - 1
    r = llmfs("prepare-data", tmp_path / "a.txt", "--out", tmp_path / "shards")
    assert r.returncode == 0, r.stderr
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    assert index["total_tokens"] == training_tokens(plain) + 1   # the same tokens, after the one <|endoftext|> it puts before each file
    r = llmfs("pretrain", "--resume", tmp_path / "token", "--epochs", 2)   # a resume keeps the run's rule
    assert r.returncode == 0 and training_tokens(r) == training_tokens(token), r.stderr
    one_line_error(llmfs("pretrain", "--resume", tmp_path / "plain", "--epochs", 2, "--eot-in-data"),
                   "--eot-in-data True differs from the resumed run's False")


def test_files_are_still_separated_by_the_token_and_text_without_literals_is_unchanged():
    from llm_from_scratch.engine.shards import SEPARATOR, encode_joined
    from llm_from_scratch.text_data import get_tokenizer
    tok = get_tokenizer()
    texts = ["Every effort moves you", " towards <|endoftext|> the end", "Second file."]
    joined = SEPARATOR.join(texts)
    for a, b in ((0, len(joined)), (0, 30), (5, 60), (22, 30), (24, len(joined)), (len(joined), len(joined))):
        assert encode_joined(texts, a, b, tok, literal_eot=True) == tok.encode(joined[a:b], allowed_special={SEPARATOR})
    ids = encode_joined(texts, 0, len(joined), tok)
    assert ids.count(tok.eot_token) == 2 and tok.decode(ids) == joined           # the two joins, not the literal inside the text
    plain_texts = ["Every effort moves you", "Second file."]
    assert encode_joined(plain_texts, 0, 40, tok) == tok.encode(SEPARATOR.join(plain_texts)[:40], allowed_special={SEPARATOR})


def test_prompts_and_messages_are_plain_text(full_run, serve_models, monkeypatch):
    "chat --prompt made a typed <|endoftext|> the token, while serve read it as text."
    from llm_from_scratch.engine import cli
    seen = []
    monkeypatch.setattr(cli, "print_stream", lambda model, idx, *a, **k: seen.append(idx[0].tolist()) or "")
    assert cli.main(["generate", "--checkpoint", str(full_run[0]), "--prompt", "A<|endoftext|>B", "--no-fast-linear"]) == 0
    assert cli.main(["chat", "--checkpoint", str(serve_models[0] / "instruct"), "--prompt", "A<|endoftext|>B", "--no-fast-linear"]) == 0
    assert all(50256 not in ids for ids in seen) and len(seen) == 2


def test_adapters_carry_their_checksum_and_their_bases(tmp_path):
    "Flipped adapter bytes changed answers silently, and another base of the same shape at the recorded path was used."
    from llm_from_scratch.engine.checkpoints import load_adapted, save_adapters, save_checkpoint
    from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
    from llm_from_scratch.lora import LoRALayer, replace_linear_with_lora
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "base", GPTModel(GPT_CONFIG_TINY))
    model = GPTModel(GPT_CONFIG_TINY)
    for p in model.parameters(): p.requires_grad = False
    replace_linear_with_lora(model, rank=2, alpha=4)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALayer): m.B.normal_()
    save_adapters(tmp_path / "adapters", model, base_model=str(tmp_path / "base"))
    record = json.loads((tmp_path / "adapters" / "adapters.json").read_text())
    assert len(record["adapters_sha256"]) == 64 and len(record["base_sha256"]) == 64
    load_adapted(tmp_path / "adapters")
    weights = tmp_path / "adapters" / "adapters.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4096:] = bytes(b ^ 0xFF for b in data[-4096:])   # 4,096 flipped bytes, the file's size unchanged
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="adapters.safetensors is not the file that was saved"): load_adapted(tmp_path / "adapters")
    save_adapters(tmp_path / "adapters", model, base_model=str(tmp_path / "base"))
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "base", GPTModel(GPT_CONFIG_TINY))   # another base, the same shape, the same place
    with pytest.raises(CheckpointError, match="is not the one these adapters were trained on"): load_adapted(tmp_path / "adapters")


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path):
    "prepare-data --out a file, tune --storage a text file, evaluate --out a folder (after scoring every entry): tracebacks."
    (tmp_path / "t.txt").write_text("Every effort moves you. " * 50)
    (tmp_path / "afile").write_text("x")
    one_line_error(llmfs("prepare-data", tmp_path / "t.txt", "--out", tmp_path / "afile"), "--out")
    one_line_error(llmfs("prepare-data", tmp_path / "t.txt", "--out", "/proc/llmfs-shards"), "is not a writable folder")
    (tmp_path / "notes.txt").write_text("not a database")
    one_line_error(llmfs("tune", "--trials", 1, "--config", "tiny", "--storage", tmp_path / "notes.txt"), "is not an SQLite file")
    one_line_error(llmfs("tune", "--trials", 1, "--config", "tiny", "--storage", "/proc/llmfs.db"), "is not a writable folder")
    entries = [{"instruction": "Say hi.", "input": "", "output": "Hi.", "model_response": "Hi."}]
    (tmp_path / "responses.json").write_text(json.dumps(entries))
    (tmp_path / "scores").mkdir()
    one_line_error(llmfs("evaluate", "--responses", tmp_path / "responses.json", "--out", tmp_path / "scores",
                         "--judge-url", "http://127.0.0.1:9/api/chat"), "--out")
    assert "is a folder, not a file" in llmfs("evaluate", "--responses", tmp_path / "responses.json", "--out", tmp_path / "scores").stderr
