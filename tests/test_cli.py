"End-to-end tests of the `llmfs` command line, each command a separate process, offline, on the tiny config."
import json
import shutil
import signal
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from llmfs_helpers import FAST, LLMFS, auto_weights_dtype, copy_run, llmfs, one_line_error


def assert_same_weights(a, b):
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa: assert wa[k].equal(wb[k]), f"{k} differs"


def test_pretrain_writes_a_checkpoint_and_reports_progress(full_run):
    out, r = full_run
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "loss.png", "manifest.json", "model.safetensors", "training_state.pt"]
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Ep 2 (Step" in r.stdout and "Every effort moves you" in r.stdout
    assert "tok_s=" in r.stderr and "epoch 2/2" in r.stderr  # the progress bar


def test_the_default_precision_is_the_devices_fast_one_and_said(full_run):
    "--precision auto (the default): bf16 where the CPU has AMX-BF16 or AVX512-BF16 and its kept measurement says bf16 is faster, else fp32; the first line says which and why."
    from llm_from_scratch.engine.speed import bf16_verdict
    out, r = full_run
    (fast, why), first = bf16_verdict("cpu"), r.stdout.splitlines()[0]
    chosen = "bf16" if fast else "fp32"
    assert first.endswith(f"in {chosen} (--precision auto: {why}; --precision fp32 for the book's float32)" if fast else
                          f"in fp32 (--precision auto: {why})"), first
    assert torch.load(out / "training_state.pt", weights_only=True)["run"]["precision"] == chosen   # a resume keeps it
    r = llmfs("pretrain", "--resume", out, "--epochs", 2, "--precision", "auto")   # auto with --resume: the run's own, no conflict
    assert r.returncode == 0 and "has already trained 2 epochs" in r.stdout, r.stderr


def test_resume_is_bit_identical(full_run, tmp_path):
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    r = llmfs("pretrain", "--resume", tmp_path, "--epochs", 2)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].endswith(" (as the run it resumes)"), r.stdout   # the first line says why its precision
    assert_same_weights(tmp_path, full_run[0])


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_writes_a_checkpoint_that_resumes_exactly(full_run, tmp_path, signum, status):
    "Ctrl-C (SIGINT) or SIGTERM (timeout, docker stop, job schedulers) mid-epoch: a checkpoint, exit 128 + signal, exact resume."
    proc = subprocess.Popen([*LLMFS, "pretrain", *FAST, "--epochs", "2", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # the first evaluation line: training has started
        if line.startswith("Ep 1"): break
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == status, err
    assert signal.Signals(signum).name in err and "--resume" in err
    assert torch.load(tmp_path / "training_state.pt", weights_only=True)["state"]["batch"] > 0  # stopped mid-epoch
    r = llmfs("pretrain", "--resume", tmp_path, "--epochs", 2)
    assert r.returncode == 0, r.stderr
    assert_same_weights(tmp_path, full_run[0])


def _fast_precision():
    "bf16 where this CPU multiplies it fast; elsewhere (AMD's Zen 3, say) bf16 is emulated, 10x slower than fp32, and fp32 stands in."
    from llm_from_scratch.engine.speed import bf16_is_fast
    return "bf16" if bf16_is_fast("cpu") else "fp32"


OPTIONS = ["--warmup-steps", "4", "--min-lr", "1e-4", "--grad-clip", "1.0", "--grad-accum", "5", "--precision", _fast_precision()]  # 36 batches: 7 steps of 5, one of 1


def test_appendix_d_options_resume_exactly_after_ctrl_c(full_run, tmp_path):
    "Warmup, cosine decay, clipping, accumulation and bf16 (where fast): an interrupted and resumed run ends where an uninterrupted one does."
    whole = tmp_path / "whole"
    r = llmfs("pretrain", *FAST, *OPTIONS, "--epochs", 2, "--out", whole)
    assert r.returncode == 0, r.stderr
    state = torch.load(whole / "training_state.pt", weights_only=True)["state"]
    lrs, steps = state["track_lrs"], state["step"] + 1
    assert len(lrs) == steps                                   # one learning rate per optimizer step
    assert lrs[0] == pytest.approx(1e-4) and lrs[4] == pytest.approx(2e-3) and lrs[-1] < 2e-4   # up to --lr, then down
    assert not torch.equal(load_file(str(whole / "model.safetensors"))["out_head.weight"],
                           load_file(str(full_run[0] / "model.safetensors"))["out_head.weight"])   # the options changed the run
    part = tmp_path / "part"
    proc = subprocess.Popen([*LLMFS, "pretrain", *FAST, *OPTIONS, "--epochs", "2", "--out", str(part)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("Ep 1"): break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert torch.load(part / "training_state.pt", weights_only=True)["state"]["batch"] > 0   # stopped mid-epoch
    r = llmfs("pretrain", "--resume", part, "--epochs", 2)
    assert r.returncode == 0, r.stderr
    assert_same_weights(part, whole)
    r = llmfs("pretrain", "--resume", part, "--epochs", 3, "--grad-accum", 4)
    assert r.returncode == 2 and "--grad-accum 4 differs from the resumed run's 5" in r.stderr
    r = llmfs("pretrain", "--resume", part, "--epochs", 3)   # more epochs: the schedule keeps its shape, then stays at --min-lr
    assert r.returncode == 0, r.stderr
    longer = torch.load(part / "training_state.pt", weights_only=True)["state"]["track_lrs"]
    assert longer[:len(lrs)] == lrs and all(lr == pytest.approx(1e-4) for lr in longer[len(lrs):]) and len(longer) > len(lrs)


def greedy_continuation(model, prompt, n):
    "What `llmfs generate --temperature 0` should print after the prompt: the library's greedy tokens, decoded, in the weights' dtype of --dtype auto."
    model = model.to(auto_weights_dtype() or next(model.parameters()).dtype)   # bfloat16 where this CPU multiplies it fast
    from llm_from_scratch.pretraining import generate, text_to_token_ids
    from llm_from_scratch.text_data import get_tokenizer
    tok = get_tokenizer()
    idx = text_to_token_ids(prompt, tok)
    ids = generate(model, idx, n, model.cfg["context_length"], eos_id=tok.eot_token)
    return tok.decode(ids[0, idx.shape[1]:].tolist())


def test_generate_streams_the_continuation(full_run):
    from llm_from_scratch.engine.checkpoints import load_model
    out, prompt = full_run[0], "Every effort moves you"
    greedy = llmfs("generate", "--checkpoint", out, "--prompt", prompt, "--max-new-tokens", 10, "--temperature", 0, "--no-fast-linear")
    assert greedy.returncode == 0, greedy.stderr
    expected = greedy_continuation(load_model(out), prompt, 10)
    assert expected  # the model generated something (greedy: the same as the library, below)
    assert greedy.stdout == prompt + expected + "\n"
    r = llmfs("generate", "--checkpoint", out, "--prompt", prompt, "--max-new-tokens", 10, "--seed", 1)
    assert r.returncode == 0, r.stderr
    again = llmfs("generate", "--checkpoint", out, "--prompt", prompt, "--max-new-tokens", 10, "--seed", 1)
    other = llmfs("generate", "--checkpoint", out, "--prompt", prompt, "--max-new-tokens", 10, "--seed", 2)
    assert again.stdout == r.stdout  # seeded sampling is reproducible
    assert other.stdout != r.stdout  # ... and depends on the seed


QWEN3 = ["--arch", "qwen3", *FAST, "--eval-freq", "4"]


@pytest.fixture(scope="module")
def qwen3_run(tmp_path_factory):
    "An uninterrupted 2-epoch run of a tiny Qwen3 (`--arch qwen3`) on The Verdict's first 6,000 characters: its folder and the finished process."
    from llm_from_scratch.text_data import download
    out = tmp_path_factory.mktemp("qwen3") / "run"
    (out.parent / "verdict-6k.txt").write_text(download("the-verdict.txt").read_text(encoding="utf-8")[:6000], encoding="utf-8")
    r = llmfs("pretrain", *QWEN3, "--data", out.parent / "verdict-6k.txt", "--epochs", 2, "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r


def test_pretrain_arch_qwen3_is_recorded_and_resumes_exactly(qwen3_run, tmp_path):
    "The architecture is saved (config.json, the run's settings); a run stopped after one epoch and resumed ends as the uninterrupted one."
    from llm_from_scratch.engine.checkpoints import load_model
    from llm_from_scratch.modern_llms import Qwen3Model
    out, r = qwen3_run
    assert r.stdout.startswith("Training a 6.5M-parameter Qwen3 (2 layers, 64 dims, context 64) on "), r.stdout
    assert json.loads((out / "config.json").read_text())["arch"] == "qwen3"
    assert torch.load(out / "training_state.pt", weights_only=True)["run"]["arch"] == "qwen3"
    assert type(load_model(out)) is Qwen3Model
    r = llmfs("pretrain", *QWEN3, "--data", out.parent / "verdict-6k.txt", "--epochs", 1, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    r = llmfs("pretrain", "--resume", tmp_path, "--epochs", 2)   # no --arch: the run's own
    assert r.returncode == 0, r.stderr
    assert "-parameter Qwen3 (" in r.stdout
    assert_same_weights(tmp_path, out)
    losses = [torch.load(d / "training_state.pt", weights_only=True)["state"]["train_losses"] for d in (tmp_path, out)]
    assert losses[0] == losses[1] and len(losses[0]) >= 3, losses   # the same evaluations, to the last bit


def test_generate_continues_with_a_qwen3_checkpoint(qwen3_run):
    "`llmfs generate --checkpoint` rebuilds the Qwen3 and prints its greedy tokens, decoded by GPT-2's tokenizer."
    from llm_from_scratch.engine.checkpoints import load_model
    out, prompt = qwen3_run[0], "Every effort moves you"
    r = llmfs("generate", "--checkpoint", out, "--prompt", prompt, "--max-new-tokens", 10, "--temperature", 0, "--no-fast-linear")
    assert r.returncode == 0, r.stderr
    assert r.stdout == prompt + greedy_continuation(load_model(out), prompt, 10) + "\n"


def test_a_run_of_another_arch_is_refused_in_one_line_and_left_as_it_was(qwen3_run, full_run, tmp_path):
    "--resume with another --arch, finetuning a Qwen3 checkpoint, a config.json naming an unknown architecture: one line, nothing written."
    (tmp_path / "run").mkdir()
    run = copy_run(qwen3_run[0], tmp_path / "run")
    before = {f.name: f.read_bytes() for f in run.iterdir()}
    one_line_error(llmfs("pretrain", "--resume", run, "--arch", "gpt2", "--epochs", 3), "--arch gpt2 differs from the resumed run's qwen3")
    one_line_error(llmfs("pretrain", "--resume", full_run[0], "--arch", "llama3", "--epochs", 3), "--arch llama3 differs from the resumed run's gpt2")
    one_line_error(llmfs("finetune-instruct", "--checkpoint", run, "--out", tmp_path / "instruct"),
                   f"--checkpoint {run} holds a Qwen3 model (llmfs pretrain --arch qwen3)")
    assert {f.name: f.read_bytes() for f in run.iterdir()} == before and not (tmp_path / "instruct").exists()
    (run / "manifest.json").unlink()
    (run / "config.json").write_text(json.dumps({**json.loads((run / "config.json").read_text()), "arch": "mamba"}))
    one_line_error(llmfs("generate", "--checkpoint", run, "--prompt", "Hi"), "its arch 'mamba' is none of gpt2, llama3, qwen3")


def test_a_folder_saved_before_arch_was_recorded_is_a_gpt2(full_run, tmp_path):
    "An older llmfs wrote no arch (and no manifest): generate reads such a folder as the GPT-2 it holds."
    old = copy_run(full_run[0], tmp_path)
    (old / "manifest.json").unlink()
    cfg = json.loads((old / "config.json").read_text())
    assert cfg.pop("arch") == "gpt2"
    (old / "config.json").write_text(json.dumps(cfg))
    r = llmfs("generate", "--checkpoint", old, "--prompt", "Every effort moves you", "--max-new-tokens", 5, "--temperature", 0, "--no-fast-linear")
    new = llmfs("generate", "--checkpoint", full_run[0], "--prompt", "Every effort moves you", "--max-new-tokens", 5, "--temperature", 0, "--no-fast-linear")
    assert r.returncode == 0 and "has no manifest.json" in r.stderr, r.stderr
    assert r.stdout == new.stdout


def test_fused_attention_only_where_exact_and_a_resume_keeps_the_choice(full_run, tmp_path):
    "SDPA in every attention without dropout (finetuning's default), the book's attention with it; a run records the choice, and a run saved before the choice existed resumes without it."
    from llm_from_scratch.attention import MultiHeadAttention
    from llm_from_scratch.engine.cli import _speed_up
    from llm_from_scratch.engine.speed import SDPAMultiHeadAttention
    from llm_from_scratch.gpt_model import GPT_CONFIG_TINY, GPTModel
    for rate, kind in ((0.0, SDPAMultiHeadAttention), (0.1, MultiHeadAttention)):
        model = _speed_up(GPTModel({**GPT_CONFIG_TINY, "drop_rate": rate}), torch.device("cpu"), False)
        assert {type(block.att) for block in model.trf_blocks} == {kind}, rate
    assert torch.load(full_run[0] / "training_state.pt", weights_only=True)["run"]["exact_sdpa"] is True
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    state = torch.load(tmp_path / "training_state.pt", weights_only=True)
    del state["run"]["exact_sdpa"]   # as an older llmfs wrote it
    torch.save(state, tmp_path / "training_state.pt")
    (tmp_path / "manifest.json").unlink()   # (its files changed: the manifest would refuse them)
    r = llmfs("pretrain", "--resume", tmp_path, "--epochs", 2, "--unchecked")
    assert r.returncode == 0, r.stderr
    assert torch.load(tmp_path / "training_state.pt", weights_only=True)["run"]["exact_sdpa"] is False


@pytest.mark.parametrize("args, message", [
    (["pretrain", "--data", "no-such-file.txt", "--config", "tiny"], "no-such-file.txt: no such file"),
    (["pretrain", "--config", "huge"], "invalid choice: 'huge'"),
    (["pretrain", "--config", "tiny", "--context-length", "65"], "larger than the tiny model's context length of 64"),
    (["pretrain", "--resume", "no-such-dir"], "is not a checkpoint folder"),
    (["generate", "--checkpoint", "no-such-dir", "--prompt", "x"], "is not a checkpoint folder"),
    (["generate", "--prompt", "x"], "one of the arguments --checkpoint --model is required"),
    (["pretrain", "--epochs", "many"], "invalid int value: 'many'"),
    (["pretrain", "--arch", "gpt3"], "invalid choice: 'gpt3' (choose from 'gpt2', 'llama3', 'qwen3')"),
])
def test_bad_arguments_give_one_line(args, message, tmp_path):
    r = subprocess.run([*LLMFS, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_short_text_is_a_clear_error(tmp_path):
    (tmp_path / "short.txt").write_text("Too short to train on.")
    r = llmfs("pretrain", "--data", tmp_path / "short.txt", "--config", "tiny", "--out", tmp_path / "run")
    assert r.returncode == 2 and "too short" in r.stderr and "its training part has" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()
    (tmp_path / "short.txt").write_text("Every effort moves you. " * 60)   # 302 tokens: 4 windows of 64 to train on, 31 tokens for validation
    r = llmfs("pretrain", "--data", tmp_path / "short.txt", "--config", "tiny", "--out", tmp_path / "run")
    assert r.returncode == 2 and "its validation part has 31 tokens, too short for one window" in r.stderr, r.stderr


@pytest.mark.skipif(shutil.which("llmfs") is None, reason="the console script is installed with the package")
def test_console_script_help():
    for cmd in ([], ["pretrain"], ["generate"]):
        r = subprocess.run(["llmfs", *cmd, "--help"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.startswith("usage: llmfs")


def test_default_pretrain_runs_in_the_current_folder(tmp_path):
    "The README's main job, `llmfs pretrain`, with its defaults (small config, The Verdict) but one epoch."
    r = subprocess.run([*LLMFS, "pretrain", "--epochs", "1"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "29.0M-parameter GPT (4 layers, 256 dims, context 256) on the-verdict.txt" in r.stdout
    assert sorted(p.name for p in (tmp_path / "runs" / "pretrain").iterdir()) == [
        "config.json", "loss.png", "manifest.json", "model.safetensors", "training_state.pt"]


def test_generate_with_a_gpt2_folder(tmp_path):
    "`llmfs generate --model` with a local Hugging Face GPT-2 folder (random weights: no download here)."
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_positions=64, n_embd=64, n_layer=2, n_head=4)).save_pretrained(tmp_path)
    r = llmfs("generate", "--model", tmp_path, "--prompt", "Hello", "--max-new-tokens", 5, "--temperature", 0, "--no-fast-linear")
    assert r.returncode == 0, r.stderr
    from llm_from_scratch.pretrained_weights import load_gpt2
    assert r.stdout == "Hello" + greedy_continuation(load_gpt2(tmp_path), "Hello", 5) + "\n"
    r = llmfs("generate", "--model", "gpt3", "--prompt", "Hello")
    assert r.returncode == 2 and "neither an existing folder, a GPT-2 name" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = llmfs("generate", "--model", tmp_path, "--checkpoint", tmp_path, "--prompt", "Hello")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


@pytest.mark.parametrize("content, message", [
    ("a,b,c\n1,2,3\n", "needs a 'text' and a 'label' column"),
    ("label,text\npos,great\nneg,bad\nmeh,so-so\n", "exactly two labels, found 3"),
    ("label,text\npos,great\nneg,\n", "row 2 has an empty text"),
])
def test_finetune_classifier_refuses_bad_data_in_one_line(content, message, full_run, tmp_path):
    (tmp_path / "data.csv").write_text(content)
    r = llmfs("finetune-classifier", "--checkpoint", full_run[0], "--data", tmp_path / "data.csv", "--out", tmp_path / "clf")
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "clf").exists()


def test_classify_needs_a_classifier(full_run):
    r = llmfs("classify", "--checkpoint", full_run[0], "Hello")
    assert r.returncode == 2 and "holds a GPT, not a classifier" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="session")
def classifier(full_run, tmp_path_factory):
    "A spam classifier finetuned (1 epoch, everything training) from the tiny run's GPT: its folder and the process."
    out = tmp_path_factory.mktemp("clf") / "clf"
    r = llmfs("finetune-classifier", "--checkpoint", full_run[0], "--trainable", "all", "--lr", "1e-3", "--epochs", 1,
              "--out", out, "--no-fast-linear")
    assert r.returncode == 0, r.stderr
    return out, r


def test_finetune_classifier_writes_a_classifier_that_classify_reads(classifier):
    out, r = classifier
    assert sorted(p.name for p in out.iterdir()) == ["accuracy.png", "config.json", "manifest.json", "model.safetensors"]
    test = float(r.stdout.split("test ")[1].split("%")[0])
    assert test > 75, r.stdout                   # one epoch of a tiny model: well above chance
    assert r.stderr.count("are truncated to it") == 1 and "finetuning" in r.stderr   # said once; the progress bar
    texts = "WINNER!! Claim your free cash prize now, txt WIN to 80086\n\nSee you at dinner tonight?\n"
    c = llmfs("classify", "--checkpoint", out, "-", input=texts)
    assert c.returncode == 0, c.stderr
    rows = [line.split("\t") for line in c.stdout.splitlines()]
    assert [text for _, _, text in rows] == ["WINNER!! Claim your free cash prize now, txt WIN to 80086", "See you at dinner tonight?"]
    assert all(label in ("ham", "spam") and 0.5 <= float(p) <= 1 for label, p, _ in rows)


def test_classify_refuses_an_empty_text_and_says_once_that_long_texts_are_cut(classifier):
    r = llmfs("classify", "--checkpoint", classifier[0], "fine", "  ")
    assert r.returncode == 2 and "text 2 is empty" in r.stderr and len(r.stderr.strip().splitlines()) == 1 and not r.stdout
    r = llmfs("classify", "--checkpoint", classifier[0], "free " * 300, "win " * 300)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    assert r.stderr.count("are cut to their first") == 1, r.stderr


def test_a_classifier_is_not_a_gpt_and_a_mixed_folder_is_refused(classifier, full_run, tmp_path):
    for args in (("finetune-classifier", "--out", tmp_path / "again"), ("generate", "--prompt", "Hi")):
        r = llmfs(*args, "--checkpoint", classifier[0])
        assert r.returncode == 2 and "holds a classifier (labels ['ham', 'spam'])" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "again").exists()
    mixed = tmp_path / "mixed"
    shutil.copytree(classifier[0], mixed)
    shutil.copy(full_run[0] / "model.safetensors", mixed / "model.safetensors")   # another model's weights
    r = llmfs("classify", "--checkpoint", mixed, "Hello")
    assert r.returncode == 2 and "does not match manifest.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def instruction_data(path, n):
    "The first `n` entries of the book's instruction data, written to `path` as JSON."
    import json
    from llm_from_scratch.text_data import DATA_FILES, download
    path.write_text(json.dumps(json.loads(download(DATA_FILES["instruction-data.json"]).read_text())[:n]))
    return path


@pytest.fixture(scope="session")
def instruct(full_run, tmp_path_factory):
    "An instruction-finetuned model (1 epoch on 60 of the book's entries) from the tiny run's GPT: its folder and the process."
    d = tmp_path_factory.mktemp("instruct")
    instruction_data(d / "data.json", 60)
    r = llmfs("finetune-instruct", "--checkpoint", full_run[0], "--data", d / "data.json", "--epochs", 1, "--lr", "1e-3",
              "--max-new-tokens", 8, "--out", d / "model", "--no-fast-linear")
    assert r.returncode == 0, r.stderr
    return d / "model", r


def test_finetune_instruct_writes_a_model_its_answers_and_a_plot(instruct):
    import json
    out, r = instruct
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "instruction-data-with-response.json", "loss.png",
                                                     "manifest.json", "model.safetensors"]
    answers = json.loads((out / "instruction-data-with-response.json").read_text())
    assert len(answers) == 6 and all(isinstance(a["model_response"], str) for a in answers)   # 10% of 60
    assert json.loads((out / "config.json").read_text())["instruct"]["format"] == "alpaca"
    assert "Final train loss" in r.stdout and "generating" in r.stderr and "Ep 1 (Step 000000)" in r.stdout


@pytest.mark.parametrize("lora", [False, True])
def test_finetune_instruct_resumes_exactly_after_ctrl_c(lora, instruct, full_run, tmp_path):
    "Ctrl-C in finetune-instruct: exit 130, a checkpoint in --out's unfinished/; refused without --resume or with another option; with --resume, the uninterrupted run's weights and answers."
    data = instruct[0].parent / "data.json"
    command = [*LLMFS, "finetune-instruct", "--checkpoint", str(full_run[0]), "--data", str(data), "--epochs", "2", "--lr", "1e-3",
               "--max-new-tokens", "8", "--no-fast-linear", *(["--lora-rank", "2", "--merge"] if lora else [])]
    whole, part = tmp_path / "whole", tmp_path / "part"   # (with adapters, the optimizer holds a part of the model's parameters)
    r = subprocess.run([*command, "--out", str(whole)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen([*command, "--out", str(part)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()             # the first line: the handler is set, 12 steps are to come
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "SIGINT" in err and "--resume" in err, err
    assert torch.load(part / "unfinished" / "training_state.pt", weights_only=True)["state"]["epoch"] < 2   # stopped while training
    r = subprocess.run([*command, "--out", str(part)], capture_output=True, text=True)
    assert r.returncode == 2 and "holds an interrupted finetune-instruct run" in r.stderr and "--resume" in r.stderr, r.stderr
    r = subprocess.run([*command, "--out", str(part), "--resume", "--batch-size", "4"], capture_output=True, text=True)
    assert r.returncode == 2 and "--batch-size (4; the run had 8) differs" in r.stderr, r.stderr
    r = subprocess.run([*command, "--out", str(part), "--resume"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].endswith(" (as the run it resumes)") and "Resuming the run in" in r.stdout, r.stdout
    assert_same_weights(part, whole)
    assert (part / "instruction-data-with-response.json").read_text() == (whole / "instruction-data-with-response.json").read_text()
    assert sorted(p.name for p in part.iterdir()) == sorted(p.name for p in whole.iterdir())   # unfinished/ is gone


def test_finetune_instruct_says_what_is_kept_when_sigterm_stops_its_answers(instruct, full_run, tmp_path):
    "SIGTERM while the test set is answered: exit 143 with a message, the trained model kept; --resume answers without training again."
    command = [*LLMFS, "finetune-instruct", "--checkpoint", str(full_run[0]), "--data", str(instruct[0].parent / "data.json"),
               "--epochs", "1", "--lr", "1e-3", "--no-fast-linear", "--out", str(tmp_path / "model")]
    with open(tmp_path / "stderr.txt", "w+") as stderr:   # (a file: the progress bars never fill a pipe nobody reads)
        proc = subprocess.Popen([*command, "--max-new-tokens", "5000"], stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            for line in proc.stdout:   # (5,000 tokens an answer, one answer at a time: seconds of answering to come)
                if line.startswith("Answering the"): break
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=300)
        finally: proc.kill()
        stderr.seek(0)
        err = stderr.read()
    assert proc.returncode == 143 and "Interrupted before the model was written (SIGTERM)" in err, (proc.returncode, err[-1500:])
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["unfinished"]
    r = subprocess.run([*command, "--max-new-tokens", "8", "--resume"], capture_output=True, text=True)
    assert r.returncode == 0 and "its 1 epoch trained; answering the test set" in r.stdout and "Ep 1" not in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "model" / "instruction-data-with-response.json").is_file() and not (tmp_path / "model" / "unfinished").exists()


def test_finetune_instruct_refuses_its_base_folder_and_a_model_beside_an_interrupted_run(full_run, tmp_path):
    "--out the --checkpoint (or --model) folder would replace the base it trains on (dpo's too); --resume where --out also holds a model would replace that one."
    before = sorted(p.name for p in full_run[0].iterdir())
    one_line_error(llmfs("finetune-instruct", "--checkpoint", full_run[0], "--out", full_run[0], "--overwrite"), "is the --checkpoint folder")
    assert sorted(p.name for p in full_run[0].iterdir()) == before
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "manifest.json").write_text("{}")   # an interrupted run's committed checkpoint, as far as the check reads
    (tmp_path / "config.json").write_text("{}")                     # and a model written beside it since
    one_line_error(llmfs("finetune-instruct", "--checkpoint", full_run[0], "--out", tmp_path, "--resume"),
                   "holds a model beside the interrupted run")
    one_line_error(llmfs("finetune-instruct", "--model", full_run[0], "--out", full_run[0], "--overwrite"), "is the --model folder")
    one_line_error(llmfs("dpo", "--checkpoint", full_run[0], "--out", full_run[0], "--overwrite"), "is the --checkpoint folder")
    assert sorted(p.name for p in full_run[0].iterdir()) == before


@pytest.mark.parametrize("content, message", [
    ('[{"instruction": "a", "output": "b"},\n {"instruction": "c" "output": "d"}]', "not valid JSON, line 2 column 22"),
    ('[{"instruction": "a", "output": "b"}, {"instruction": "c"}]', "entry 1 has no 'output' field"),
    ("[]", "the list of entries is empty"),
    ('[{"instruction": "a", "output": "b"}]', "too few entries (1) for a batch of 8"),
])
def test_finetune_instruct_refuses_bad_data_in_one_line(content, message, full_run, tmp_path):
    (tmp_path / "data.json").write_text(content)
    r = llmfs("finetune-instruct", "--checkpoint", full_run[0], "--data", tmp_path / "data.json", "--out", tmp_path / "model")
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "model").exists()


def test_chat_answers_an_instruction_and_refuses_a_plain_gpt(instruct, full_run):
    from llm_from_scratch.instruction_tuning import RESPONSE_HEADER, format_input
    from llm_from_scratch.engine.checkpoints import load_instruct_model
    r = llmfs("chat", "--checkpoint", instruct[0], "--prompt", "Name a fruit.", "--max-new-tokens", 5, "--no-fast-linear")
    prompt = format_input({"instruction": "Name a fruit.", "input": ""}) + RESPONSE_HEADER   # the Alpaca prompt, answered greedily
    assert r.returncode == 0 and r.stdout == greedy_continuation(load_instruct_model(instruct[0])[0], prompt, 5) + "\n", r.stderr
    r = llmfs("chat", "--checkpoint", instruct[0], "--max-new-tokens", 3, "--no-fast-linear", input="Hello\n\n")
    assert r.returncode == 0 and r.stdout.count("> ") == 2, r.stdout       # one answer, then the empty line ends it
    r = llmfs("chat", "--checkpoint", full_run[0], "--prompt", "Hi")
    assert r.returncode == 2 and "is not instruction-tuned" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_evaluate_scores_answers_with_a_judge_server_and_caches_its_replies(instruct, tmp_path):
    import json
    from llm_from_scratch.instruction_tuning import StubJudge
    responses = tmp_path / "answers.json"
    shutil.copy(instruct[0] / "instruction-data-with-response.json", responses)
    first = json.loads(responses.read_text())[0]["instruction"]
    with StubJudge(lambda prompt: "I cannot say" if first in prompt else "70") as judge:
        for attempt in range(2):
            r = llmfs("evaluate", "--responses", responses, "--judge-url", judge.url + "/v1/chat/completions")
            assert r.returncode == 0, r.stderr
            assert "Average score: 70.00 over 5 of 6 responses" in r.stdout and "Unreadable replies: 1" in r.stdout
            if attempt == 0: asked = len(judge.requests)
        assert (asked, len(judge.requests)) == (6, 6)           # the second run came from the cache
    scores = json.loads((tmp_path / "answers-scores.json").read_text())
    assert [s["score"] for s in scores] == [None, 70, 70, 70, 70, 70] and scores[0]["judge_reply"] == "I cannot say"
    r = llmfs("evaluate", "--responses", responses, "--judge-url", judge.url + "/api/chat")   # the server has stopped
    assert r.returncode == 2 and "Start one: `ollama serve`" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_finetune_instruct_can_mask_the_instructions(full_run, tmp_path):
    instruction_data(tmp_path / "data.json", 30)
    r = llmfs("finetune-instruct", "--checkpoint", full_run[0], "--data", tmp_path / "data.json", "--epochs", 1, "--mask-instructions",
              "--max-new-tokens", 2, "--out", tmp_path / "model", "--no-fast-linear")
    assert r.returncode == 0 and "the loss counts the responses only" in r.stdout, r.stderr
    assert (tmp_path / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize("args, message", [
    (["--judge", "llama3"], "expected ollama:MODEL"),
    (["--judge", "ollama:"], "expected ollama:MODEL"),
    (["--judge-model", "llama3"], "--judge-model names the model at --judge-url"),
    (["--judge-url", "http://127.0.0.1:9/generate"], "ends with /api/chat"),
])
def test_evaluate_refuses_a_bad_judge_in_one_line(args, message, instruct):
    r = llmfs("evaluate", "--responses", instruct[0] / "instruction-data-with-response.json", *args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_evaluate_names_a_missing_or_broken_file_in_one_line(instruct, tmp_path):
    r = llmfs("evaluate", "--responses", tmp_path / "missing.json", "--judge-url", "http://127.0.0.1:9/api/chat")
    assert r.returncode == 2 and "missing.json: cannot be read" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    shutil.copy(instruct[0] / "instruction-data-with-response.json", tmp_path / "a.json")
    (tmp_path / "a-judge-cache.json").write_text("{half")
    r = llmfs("evaluate", "--responses", tmp_path / "a.json", "--judge-url", "http://127.0.0.1:9/api/chat")
    assert r.returncode == 2 and "is not a judge cache" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_chat_refuses_a_bad_top_k_and_classify_reads_the_special_token_as_text(instruct, classifier):
    r = llmfs("chat", "--checkpoint", instruct[0], "--prompt", "Hi", "--top-k", 0)
    assert r.returncode == 2 and "--top-k must be at least 1" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = llmfs("classify", "--checkpoint", classifier[0], "Hello <|endoftext|> there")
    assert r.returncode == 0 and r.stdout.endswith("\tHello <|endoftext|> there\n"), r.stderr


def test_pretrain_compile_writes_a_plain_checkpoint(tmp_path):
    "--compile: the compiled model trains, and its checkpoint is the plain model's (generate loads it)."
    r = llmfs("pretrain", *FAST, "--epochs", 1, "--compile", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert not any(k.startswith("_orig_mod") for k in load_file(str(tmp_path / "model.safetensors")))
    r = llmfs("generate", "--checkpoint", tmp_path, "--prompt", "Every", "--max-new-tokens", 3, "--temperature", 0, "--no-fast-linear")
    assert r.returncode == 0 and r.stdout.startswith("Every"), r.stderr


def test_lora_finetuning_writes_adapters_that_load_on_their_base_or_merged(full_run, tmp_path):
    import json
    r = llmfs("finetune-classifier", "--checkpoint", full_run[0], "--lora-rank", 4, "--lora-alpha", 8, "--lr", "3e-3",
              "--epochs", 1, "--out", tmp_path / "clf", "--no-fast-linear")
    assert r.returncode == 0 and "LoRA rank 4, alpha 8.0" in r.stdout, r.stderr
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["accuracy.png", "adapters.json", "adapters.safetensors"]
    record = json.loads((tmp_path / "clf" / "adapters.json").read_text())
    assert (record["rank"], record["alpha"], record["base_model"], record["classifier"]["labels"]) == (4, 8.0, str(full_run[0]), ["ham", "spam"])
    adapters = load_file(str(tmp_path / "clf" / "adapters.safetensors"))
    assert all(k.endswith((".lora.A", ".lora.B")) or k.startswith("out_head.") for k in adapters)   # adapters, and the new head
    base = sum(v.numel() for v in load_file(str(full_run[0] / "model.safetensors")).values())
    assert sum(v.numel() for v in adapters.values()) < base / 10
    text = "WINNER!! Claim your free cash prize now"
    on_base = llmfs("classify", "--checkpoint", tmp_path / "clf", text)              # base + adapters
    assert on_base.returncode == 0 and on_base.stdout.split("\t")[0] in ("ham", "spam"), on_base.stderr
    r = llmfs("finetune-classifier", "--checkpoint", full_run[0], "--lora-rank", 4, "--lora-alpha", 8, "--lr", "3e-3",
              "--epochs", 1, "--merge", "--out", tmp_path / "merged", "--no-fast-linear")
    assert r.returncode == 0 and (tmp_path / "merged" / "model.safetensors").is_file(), r.stderr
    merged = llmfs("classify", "--checkpoint", tmp_path / "merged", text)
    assert merged.stdout == on_base.stdout                                          # the same classifier, merged
    instruction_data(tmp_path / "data.json", 30)
    r = llmfs("finetune-instruct", "--checkpoint", full_run[0], "--data", tmp_path / "data.json", "--epochs", 1, "--lora-rank", 2,
              "--max-new-tokens", 2, "--out", tmp_path / "inst", "--no-fast-linear")
    assert r.returncode == 0 and not (tmp_path / "inst" / "model.safetensors").exists(), r.stderr
    for command in (["chat", "--prompt", "Hi"], ["generate", "--prompt", "Hi", "--temperature", "0"]):
        r = llmfs(*command, "--checkpoint", tmp_path / "inst", "--max-new-tokens", 2, "--no-fast-linear")
        assert r.returncode == 0, r.stderr
    r = llmfs("chat", "--checkpoint", tmp_path / "clf", "--prompt", "Hi")
    assert r.returncode == 2 and "adapters for a classifier, not for instruct" in r.stderr
    r = llmfs("finetune-classifier", "--checkpoint", full_run[0], "--lora-alpha", 8, "--out", tmp_path / "x")
    assert r.returncode == 2 and "--lora-alpha needs --lora-rank" in r.stderr
    r = llmfs("finetune-classifier", "--checkpoint", full_run[0], "--lora-rank", 4, "--epochs", 1, "--out", tmp_path / "clf")
    assert r.returncode == 2 and "already holds a checkpoint" in r.stderr          # adapters are not overwritten silently


def preference_data(path, n, identical=()):
    "The first `n` entries of the book's preference data, written to `path` as JSON; entries in `identical` get rejected = chosen."
    import json
    from llm_from_scratch.text_data import DATA_FILES, download
    data = json.loads(download(DATA_FILES["instruction-data-with-preference.json"]).read_text())[:n]
    for i in identical: data[i]["rejected"] = data[i]["chosen"]
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="session")
def dpo(instruct, tmp_path_factory):
    "A DPO-tuned model (2 epochs on 60 preference pairs, one of them identical) from the instruction-tuned one: its folder and the process."
    d = tmp_path_factory.mktemp("dpo")
    preference_data(d / "pref.json", 60, identical=(3,))
    r = llmfs("dpo", "--checkpoint", instruct[0], "--data", d / "pref.json", "--epochs", 2, "--lr", "1e-3", "--max-new-tokens", 8,
              "--out", d / "model", "--no-fast-linear")
    assert r.returncode == 0, r.stderr
    return d / "model", r


def test_dpo_moves_the_model_towards_the_chosen_answers_and_chat_reads_it(dpo, instruct):
    import json
    from llm_from_scratch.instruction_tuning import RESPONSE_HEADER, format_input
    from llm_from_scratch.engine.checkpoints import load_instruct_model
    out, r = dpo
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "dpo.json", "instruction-data-with-response.json", "loss.png",
                                                     "manifest.json", "model.safetensors"]
    assert "Skipping 1 of 60 entries whose chosen and rejected answers are the same text (entry 3)" in r.stderr, r.stderr
    assert "DPO on 48 preference pairs, beta 0.1" in r.stdout and "Ep 2 (Step 000010)" in r.stdout and "DPO: 100%" in r.stderr
    tracking = json.loads((out / "dpo.json").read_text())["tracking"]
    margins = [c - r for c, r in zip(tracking["train_chosen_rewards"], tracking["train_rejected_rewards"])]
    assert len(margins) == 3 and margins[-1] > margins[0] + 0.05, margins       # steps 0, 5 and 10 of 12
    assert tracking["train_losses"][-1] < 0.69, tracking["train_losses"]
    assert len(json.loads((out / "instruction-data-with-response.json").read_text())) == 6   # the book's test split, answered
    tuned, before = load_instruct_model(out)[0], load_instruct_model(instruct[0])[0]
    assert not all(a.equal(b) for a, b in zip(tuned.parameters(), before.parameters()))
    r = llmfs("chat", "--checkpoint", out, "--prompt", "Name a fruit.", "--max-new-tokens", 5, "--no-fast-linear")
    prompt = format_input({"instruction": "Name a fruit.", "input": ""}) + RESPONSE_HEADER
    assert r.returncode == 0 and r.stdout == greedy_continuation(tuned, prompt, 5) + "\n", r.stderr


@pytest.mark.parametrize("case, message", [
    ("no-rejected", "entry 1 has no 'rejected' field"),
    ("all-identical", "too few usable entries (0 for training, 0 for validation) for a batch of 8"),
    ("missing-checkpoint", "is not a checkpoint folder"),
    ("plain-gpt", "is not instruction-tuned"),
    ("beta", "--beta must be a positive number, not 0.0"),
])
def test_dpo_refuses_bad_input_in_one_line(case, message, instruct, full_run, tmp_path):
    import json
    data = preference_data(tmp_path / "pref.json", 20, identical=range(20) if case == "all-identical" else ())
    if case == "no-rejected": data.write_text(json.dumps([{"instruction": "a", "chosen": "b", "rejected": "c"}, {"instruction": "d", "chosen": "e"}]))
    checkpoint = {"missing-checkpoint": tmp_path / "nothing", "plain-gpt": full_run[0]}.get(case, instruct[0])
    r = llmfs("dpo", "--checkpoint", checkpoint, "--data", data, "--out", tmp_path / "model", *(["--beta", 0] if case == "beta" else []))
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "model").exists()


def _auto_precision():
    "The precision `--precision auto` gives on this CPU, and the words the first line says it with (as `llmfs pretrain`'s)."
    from llm_from_scratch.engine.speed import bf16_verdict
    fast, why = bf16_verdict("cpu")
    return ("bf16", f" (--precision auto: {why}; --precision fp32 for the book's float32)") if fast else ("fp32", f" (--precision auto: {why})")


def test_the_finetuning_commands_say_the_precision_they_chose(classifier, instruct, dpo):
    "--precision auto (the default) of finetune-classifier, finetune-instruct and dpo: pretrain's choice for this device, said on the first line."
    chosen, why = _auto_precision()
    for r in (classifier[1], instruct[1], dpo[1]):
        first = r.stdout.splitlines()[0]
        assert first.startswith(("Finetuning ", "Reference log-probabilities of ")) and first.endswith(f", in {chosen}{why}"), first


def _losses(stdout):
    "The (train, validation) losses of each evaluation line of a run."
    import re
    return [(float(a), float(b)) for a, b in re.findall(r"Train loss (\S+), Val loss (\S+)\n", stdout)]


@pytest.mark.parametrize("command", ["finetune-classifier", "finetune-instruct"])
def test_finetuning_in_the_other_precision_ends_near_the_same_losses(command, classifier, instruct, full_run, tmp_path):
    "The fixture's run (auto: fp32 here) again in the other precision (bf16 here): the same evaluations, each loss finite and within 0.02 of the other's."
    import math
    done = {"finetune-classifier": classifier, "finetune-instruct": instruct}[command]
    other = "fp32" if _auto_precision()[0] == "bf16" else "bf16"
    args = {"finetune-classifier": ["--trainable", "all", "--lr", "1e-3", "--epochs", 1],   # the fixtures' settings
            "finetune-instruct": ["--data", instruct[0].parent / "data.json", "--epochs", 1, "--lr", "1e-3", "--max-new-tokens", 1]}[command]
    r = llmfs(command, "--checkpoint", full_run[0], *args, "--precision", other, "--out", tmp_path / "model", "--no-fast-linear")
    assert r.returncode == 0 and r.stdout.splitlines()[0].endswith(f", in {other}"), r.stderr
    losses, reference = _losses(r.stdout), _losses(done[1].stdout)
    assert len(losses) == len(reference) >= 2 and all(map(math.isfinite, sum(losses, ()))), (losses, reference)
    assert sum(losses, ()) == pytest.approx(sum(reference, ()), abs=0.02), (losses, reference)   # measured here: 0.002 at most
    weights, fixtures = load_file(str(tmp_path / "model" / "model.safetensors")), load_file(str(done[0] / "model.safetensors"))
    assert weights.keys() == fixtures.keys() and not all(weights[k].equal(fixtures[k]) for k in weights)   # the precision applied
