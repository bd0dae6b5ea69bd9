"How the server tests run `llmfs serve` and what they compare its answers with."
import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
from contextlib import contextmanager

import torch

from llmfs_helpers import LLMFS
from llm_from_scratch.instruction_tuning import RESPONSE_HEADER, format_input
from llm_from_scratch.pretraining import generate
from llm_from_scratch.text_data import get_tokenizer


def ctrl_c_as_in_a_terminal():
    "In a child process: SIGINT as a terminal delivers it (a shell starts background jobs with SIGINT ignored, and children inherit that)."
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def running(*args):
    "`llmfs serve *args --port 0` in its own process: yields its address; Ctrl-C afterwards stops it as it stops every llmfs command."
    # float32 weights, as the tests' answers are computed (--dtype auto would take bfloat16 on a CPU that multiplies it fast)
    server = subprocess.Popen([*LLMFS, "serve", "--dtype", "float32", *map(str, args), "--port", "0", "--no-fast-linear"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        banner = server.stdout.readline()
        if not banner: raise AssertionError(f"llmfs serve did not start: {server.stderr.read()}")
        yield re.search(r"at (http://\S+)/ :", banner)[1]
    finally:
        server.send_signal(signal.SIGINT)
        status, err = server.wait(timeout=60), server.stderr.read()
        assert (status, err.strip().splitlines()[-1:]) == (130, ["llmfs: interrupted"]), err


def get(url, key=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request, timeout=60) as r: return json.loads(r.read())


def post(url, body, key=None):
    "POST JSON; (status, parsed reply) whether it succeeds or not."
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=60) as r: return r.status, r.read().decode()
    except urllib.error.HTTPError as e: return e.code, json.loads(e.read())


def greedy(model, ids, n, context, eos=(50256,)):
    "The greedy continuation of `ids`, as notebook 03's generate gives it, cut at the stop token."
    return generate(model, torch.tensor([ids]), n, context, eos_id=eos)[0, len(ids):].tolist()


def alpaca_answer(gpt, instruction, n):
    tok = get_tokenizer()
    ids = tok.encode(format_input({"instruction": instruction, "input": ""}) + RESPONSE_HEADER)
    return tok.decode(greedy(gpt, ids, n, 64))
