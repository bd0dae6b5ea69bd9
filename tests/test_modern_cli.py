"`llmfs generate --model` and `llmfs chat --model` with notebook 10's families, on tiny random hub folders (no download)."
import json
import os

import pytest
import torch

from llmfs_helpers import auto_weights_dtype, llmfs
from llm_from_scratch.modern_llms import load_pretrained, load_tokenizer, save_tiny_chat_model, stream_reply
from llm_from_scratch.pretraining import generate

FAMILIES = ["llama", "qwen3", "gemma3_text", "olmo3", "cohere2", "gemma4_text", "qwen3_5_text", "deepseek_v3"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    return {t: save_tiny_chat_model(root / t, t) for t in FAMILIES}


def reply(folder, messages, max_new_tokens, dtype="auto", **options):
    "The reply of `folder`'s model, computed here in the weights' dtype the command uses (default: --dtype auto's)."
    dtype = auto_weights_dtype() if dtype == "auto" else dtype
    model, tokenizer = load_pretrained(folder, dtype=dtype), load_tokenizer(folder)
    return "".join(stream_reply(model, tokenizer, messages, max_new_tokens, **options))


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_continues_the_prompt_greedily(folders, family):
    folder = folders[family]
    r = llmfs("generate", "--model", folder, "--prompt", "Hello world", "--max-new-tokens", 6, "--temperature", 0)
    assert r.returncode == 0, r.stderr
    model, tokenizer = load_pretrained(folder, dtype=auto_weights_dtype()), load_tokenizer(folder)
    ids = tokenizer.encode("Hello world", bos=getattr(tokenizer, "bos_id", None) is not None)   # <bos> first for Llama and Gemma
    new = generate(model, torch.tensor([ids]), 6, model.cfg["context_length"], eos_id=tokenizer.stop_ids)[0, len(ids):]
    assert r.stdout == "Hello world" + tokenizer.decode(new.tolist()) + "\n"


@pytest.mark.parametrize("family", FAMILIES)
def test_chat_answers_in_the_family_template(folders, family):
    folder = folders[family]
    r = llmfs("chat", "--model", folder, "--system", "Be brief.", "--prompt", "Hello, world!", "--max-new-tokens", 8)
    assert r.returncode == 0, r.stderr
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello, world!"}]
    options = {"enable_thinking": False} if family in ("qwen3", "qwen3_5_text") else {}   # the CLI thinks only when asked
    assert r.stdout == reply(folder, messages, 8, **options) + "\n"


def test_chat_keeps_the_conversation_and_qwen_can_think(folders):
    folder = folders["qwen3"]
    r = llmfs("chat", "--model", folder, "--max-new-tokens", 5, input="Hello\nAnd again\n\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    first = reply(folder, [{"role": "user", "content": "Hello"}], 5, enable_thinking=False)
    second = reply(folder, [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": first},
                            {"role": "user", "content": "And again"}], 5, enable_thinking=False)   # the first turn in the history
    assert lines[0].startswith("Chatting with") and r.stdout.count("> ") == 3
    assert r.stdout.endswith(f"> {first}\n> {second}\n> "), r.stdout
    r = llmfs("chat", "--model", folder, "--thinking", "--prompt", "Hi", "--max-new-tokens", 6)
    assert r.returncode == 0 and r.stdout == reply(folder, [{"role": "user", "content": "Hi"}], 6, enable_thinking=True) + "\n"


def test_bfloat16_on_request(folders):
    folder = folders["gemma3_text"]
    r = llmfs("chat", "--model", folder, "--prompt", "Hi", "--max-new-tokens", 6, "--dtype", "bfloat16")
    assert r.returncode == 0, r.stderr
    assert r.stdout == reply(folder, [{"role": "user", "content": "Hi"}], 6, dtype=torch.bfloat16) + "\n"


def test_refusals_are_one_line(folders, tmp_path):
    def refused(*args, message):
        r = llmfs(*args, env={**os.environ, "HF_HUB_OFFLINE": "1"})   # a repository id: only the hub's cache, never the network
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    refused("chat", "--model", folders["llama"], "--thinking", "--prompt", "Hi", message="--thinking is for Qwen3 models")
    from transformers import GPT2Config, GPT2LMHeadModel
    GPT2LMHeadModel(GPT2Config(n_positions=64, n_embd=64, n_layer=2, n_head=4)).save_pretrained(tmp_path / "gpt2")
    refused("chat", "--model", tmp_path / "gpt2", "--prompt", "Hi", message="is GPT-2, which has no chat format")
    no_tokenizer = tmp_path / "qwen3-without-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"): (no_tokenizer / name).write_bytes((folders["qwen3"] / name).read_bytes())
    refused("chat", "--model", no_tokenizer, "--prompt", "Hi", message="Qwen3Tokenizer needs")
    mistral = tmp_path / "mistral"
    mistral.mkdir()
    (mistral / "config.json").write_text(json.dumps({"model_type": "mistral"}))
    refused("generate", "--model", mistral, "--prompt", "Hi", message="model_type 'mistral' is not one of llama, qwen3, qwen3_moe, gemma3_text")
    refused("chat", "--model", "no/such-model-offline", "--prompt", "Hi", message="Could not get no/such-model-offline")
