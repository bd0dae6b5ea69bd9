"GPT-2 weights in GPTModel, checked against transformers with the full 124M config (random weights, no download)."
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llm_from_scratch.gpt_model import generate_text_simple, generate_text_simple_cached
from llm_from_scratch.pretrained_weights import export_to_hf, load_gpt2


@pytest.fixture(scope="module")
def gpt2_124m(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config()).eval()  # GPT-2 small's config: 124M parameters
    hf.save_pretrained(folder)
    return hf, folder


def test_logits_match_transformers(gpt2_124m):
    hf, folder = gpt2_124m
    ours = load_gpt2(folder)
    assert sum(p.numel() for p in ours.parameters()) == 124_439_808  # GPT-2 small, including position embeddings
    torch.manual_seed(1)
    for shape in [(1, 1), (2, 37), (1, 1024)]:
        idx = torch.randint(0, 50257, shape)
        with torch.no_grad(): diff = (ours(idx) - hf(idx).logits).abs().max().item()
        assert diff < 1e-5, (shape, diff)


def test_greedy_generation_matches_transformers(gpt2_124m):
    hf, folder = gpt2_124m
    ours = load_gpt2(folder)
    prompt = torch.tensor([[15496, 11, 314, 716]])  # "Hello, I am"
    with torch.no_grad():
        theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=30, min_new_tokens=30,
                             do_sample=False, pad_token_id=50256)
    assert torch.equal(generate_text_simple(ours, prompt, 30, 1024), theirs)
    assert torch.equal(generate_text_simple_cached(ours, prompt, 30, 1024), theirs)


def test_round_trip_is_exact(gpt2_124m, tmp_path):
    hf, folder = gpt2_124m
    ours = load_gpt2(folder)
    export_to_hf(ours, tmp_path)
    hf2 = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    for k, v in hf.state_dict().items(): assert torch.equal(v, hf2.state_dict()[k]), k
    back = load_gpt2(tmp_path)
    for (k, v), (k2, v2) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
