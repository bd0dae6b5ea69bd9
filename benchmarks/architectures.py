"""Batch-1 generation speed of notebook 10's Qwen3Model against transformers' Qwen3ForCausalLM, side by side in one process.

Qwen3 0.6B's configuration (QWEN_CONFIG_06_B), random weights: transformers builds the model, ours loads the very
same tensors through `load_hf_weights` (the mapping that `load_pretrained` uses), so both compute the same function.
Greedy generation of `--new-tokens` tokens after a `--prompt-tokens` prompt, with the KV cache in both:
`generate_text_simple_cached` (notebook 02's loop, our cache) against `Qwen3ForCausalLM.generate(use_cache=True)`;
on a CPU also ours with `use_fast_linear` (what `llmfs` runs in float32). The runs take turns; each figure is the
median of `--repeats` runs. Then the same in bfloat16. In float32 every run must give transformers' tokens (asserted);
in bfloat16 the table says for how many tokens they agree (rounding differs, e.g. RoPE's angles in float32 or bfloat16).

Then one row per family that notebook 10 loads (`--families`, default all of `TINY_HF_CONFIGS`): transformers saves a
random model of the family's tiny test config widened to `--width` (16 heads, 8 layers, a 32,000-token vocabulary,
the layer pattern repeated), `load_pretrained` loads it, and both generate as above, in float32, alternating.

The book reports 32.8 tokens/s for its Qwen3 0.6B with a KV cache (48.5 with its optimised cache) on an Apple M4
CPU: another machine, given for reference only.

    python benchmarks/architectures.py [--device cpu|cuda] [--new-tokens 32] [--repeats 3] [--dtypes float32 bfloat16]
                                       [--families llama qwen3 ...] [--width 1024] [--skip-qwen3-06b]
"""
import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/tokenizers.py would shadow the `tokenizers` package that transformers imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch

from llm_from_scratch.gpt_model import generate_text_simple_cached
from llm_from_scratch.modern_llms import QWEN_CONFIG_06_B, TINY_HF_CONFIGS, Qwen3Model, load_hf_weights, load_pretrained, save_tiny_hub_model
from llm_from_scratch.engine.speed import FastLinear, cpu_name, use_fast_linear


def hf_qwen3(cfg, dtype):
    "transformers' Qwen3ForCausalLM with QWEN_CONFIG_06_B's sizes, random weights."
    from transformers import Qwen3Config, Qwen3ForCausalLM
    config = Qwen3Config(vocab_size=cfg["vocab_size"], hidden_size=cfg["emb_dim"], intermediate_size=cfg["hidden_dim"],
                         num_hidden_layers=cfg["n_layers"], num_attention_heads=cfg["n_heads"], num_key_value_heads=cfg["n_kv_groups"],
                         head_dim=cfg["head_dim"], max_position_embeddings=cfg["context_length"], rope_theta=cfg["rope_base"],
                         rms_norm_eps=1e-6, tie_word_embeddings=True, dtype=dtype)
    torch.manual_seed(123)
    return Qwen3ForCausalLM(config).to(dtype).eval()


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def timed(fn, device):
    sync(device); t = time.perf_counter(); out = fn(); sync(device)
    return time.perf_counter() - t, out


def family_rows(args, device):
    "Batch-1 greedy generation of every family at one width: ours (load_pretrained) against transformers, float32."
    import transformers
    from transformers import AutoModelForCausalLM
    transformers.logging.set_verbosity_error(); transformers.logging.disable_progress_bar()   # the table alone
    n_layers = 8
    print(f"\nEvery family, width {args.width}, 16 heads, {n_layers} layers, vocabulary 32,000, float32, random weights, batch 1, "
          f"{args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, greedy, median of {args.repeats}\n")
    print("| family | parameters | ours tokens/s | transformers tokens/s | ours / transformers | same tokens |\n|---|---:|---:|---:|---:|---|")
    prompt = torch.randint(0, 32000, (1, args.prompt_tokens), generator=torch.Generator().manual_seed(0)).to(device)
    for family in args.families:
        settings = TINY_HF_CONFIGS[family][2]
        sizes = {"hidden_size": args.width, "intermediate_size": 3 * args.width, "num_attention_heads": 16, "vocab_size": 32000,
                 "num_hidden_layers": n_layers, "max_position_embeddings": 4096}
        if "layer_types" in settings: sizes["layer_types"] = (settings["layer_types"] * n_layers)[:n_layers]   # the pattern, repeated
        if family == "deepseek_v3":   # latent attention: one key/value head per query head, its low-rank sizes grown with the width
            w = args.width
            sizes.update(num_key_value_heads=16, q_lora_rank=w // 2, kv_lora_rank=w // 4, qk_nope_head_dim=w // 16,
                         qk_rope_head_dim=w // 32, v_head_dim=w // 16, moe_intermediate_size=w // 2)
        with tempfile.TemporaryDirectory() as folder:
            save_tiny_hub_model(folder, family, **sizes)
            theirs = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()
            ours = load_pretrained(folder, device)
        theirs.generation_config.eos_token_id = None   # all the tokens, in every run
        runs = {"ours": lambda m=ours: generate_text_simple_cached(m, prompt, args.new_tokens),
                "transformers": lambda m=theirs: m.generate(prompt, max_new_tokens=args.new_tokens, do_sample=False, use_cache=True, pad_token_id=0)}
        with torch.no_grad():
            outputs = {run: fn() for run, fn in runs.items()}   # warm-up, and the tokens to compare
            same = bool(torch.equal(outputs["ours"], outputs["transformers"]))
            times = {run: [] for run in runs}
            for _ in range(args.repeats):
                for run, fn in runs.items(): times[run].append(timed(fn, device)[0])
        speed = {run: args.new_tokens / statistics.median(t) for run, t in times.items()}
        params = sum(p.numel() for p in ours.parameters())
        print(f"| {family} | {params / 1e6:,.0f}M | {speed['ours']:.1f} | {speed['transformers']:.1f} | "
              f"{speed['ours'] / speed['transformers']:.2f}x | {'yes' if same else 'NO'} |", flush=True)
        del theirs, ours, runs, outputs


def main(args):
    device = torch.device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    print(f"torch {torch.__version__}, {device}: {name}, {torch.get_num_threads()} threads")
    if not args.skip_qwen3_06b: qwen3_rows(args, device)
    if args.families: family_rows(args, device)


def qwen3_rows(args, device):
    "Qwen3 0.6B's size: ours (and ours with use_fast_linear) against transformers, in each of `args.dtypes`."
    print(f"Qwen3 0.6B config, random weights, batch 1, {args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, greedy\n")
    prompt = torch.randint(0, QWEN_CONFIG_06_B["vocab_size"], (1, args.prompt_tokens), generator=torch.Generator().manual_seed(0)).to(device)
    rows, agreement = [], {}
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        theirs = hf_qwen3(QWEN_CONFIG_06_B, dtype).to(device)
        theirs.generation_config.eos_token_id = None   # all the tokens, in every run
        tensors = {k: v for k, v in theirs.state_dict().items()}
        with torch.device("meta"): ours = Qwen3Model({**QWEN_CONFIG_06_B, "dtype": dtype})
        ours = load_hf_weights(ours, tensors, "transformers' model").to(device).eval()   # the same tensors, not copies
        runs = {"ours (KV cache)": lambda m=ours: generate_text_simple_cached(m, prompt, args.new_tokens),
                "transformers generate (KV cache)": lambda m=theirs: m.generate(prompt, max_new_tokens=args.new_tokens, do_sample=False,
                                                                           use_cache=True, pad_token_id=0)}
        if device.type == "cpu" and dtype == torch.float32:
            fast = use_fast_linear(copy.deepcopy(ours))
            if type(fast.out_head) is FastLinear:
                runs["ours, use_fast_linear (llmfs)"] = lambda m=fast: generate_text_simple_cached(m, prompt, args.new_tokens)
        with torch.no_grad():
            outputs = {run: fn() for run, fn in runs.items()}   # warm-up, and the tokens to compare
            reference = outputs["transformers generate (KV cache)"][0, args.prompt_tokens:]
            for run, out in outputs.items():   # float32: the same tokens; bfloat16 rounds differently in places (RoPE)
                same = int((out[0, args.prompt_tokens:] == reference).cumprod(0).sum())
                if dtype == torch.float32: assert same == args.new_tokens, f"{run} generated other tokens than transformers"
                agreement[dtype_name, run] = same
            times = {run: [] for run in runs}
            for _ in range(args.repeats):
                for run, fn in runs.items(): times[run].append(timed(fn, device)[0])
        base = args.new_tokens / statistics.median(times["transformers generate (KV cache)"])
        for run in runs:
            speed = args.new_tokens / statistics.median(times[run])
            rows.append((dtype_name, run, speed, speed / base))
        del theirs, ours, tensors, runs, outputs
    print("| dtype | run | tokens/s | vs transformers | tokens equal to transformers' |\n|---|---|---:|---:|---:|")
    for dtype_name, run, speed, ratio in rows:
        print(f"| {dtype_name} | {run} | {speed:.1f} | {ratio:.2f}x | first {agreement[dtype_name, run]} of {args.new_tokens} |")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--prompt-tokens", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16", "float16"])
    p.add_argument("--families", nargs="*", default=list(TINY_HF_CONFIGS), choices=list(TINY_HF_CONFIGS))
    p.add_argument("--width", type=int, default=1024, help="hidden size of the per-family models")
    p.add_argument("--skip-qwen3-06b", action="store_true", help="only the per-family table")
    main(p.parse_args())
