"Shared by the command-line tests: one finished run to reuse, and the tiny checkpoints the server tests serve."
import pytest
import torch

from llmfs_helpers import FAST, llmfs
from llm_from_scratch.classification import prepare_classifier
from llm_from_scratch.engine.checkpoints import save_classifier
from llm_from_scratch.gpt_model import GPT_CONFIG_SMALL, GPT_CONFIG_TINY, GPTModel
from llm_from_scratch.engine.checkpoints import save_instruct_model
from llm_from_scratch.modern_llms import save_tiny_chat_model
from llm_from_scratch.engine.checkpoints import save_checkpoint


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    "An uninterrupted 2-epoch run of the tiny config: its folder and the finished process."
    out = tmp_path_factory.mktemp("full")
    r = llmfs("pretrain", *FAST, "--epochs", 2, "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory):
    "Tiny checkpoints of every kind llmfs serve serves (and a slower one), and the GPT behind the first three."
    root = tmp_path_factory.mktemp("serve")
    torch.manual_seed(123)
    gpt = GPTModel(GPT_CONFIG_TINY).eval()
    save_checkpoint(root / "base", gpt)
    save_instruct_model(root / "instruct", gpt, base_model="tiny")
    save_classifier(root / "classifier", prepare_classifier(GPTModel(GPT_CONFIG_TINY), num_classes=2), labels=("ham", "spam"), max_length=16)
    save_tiny_chat_model(root / "qwen3", "qwen3")
    save_checkpoint(root / "slow", GPTModel({**GPT_CONFIG_SMALL, "drop_rate": 0.0}))   # 30M parameters: 200 tokens take a while
    return root, gpt
