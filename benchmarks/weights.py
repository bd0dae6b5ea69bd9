"""Memory used while loading GPT-2 weights: our loader against the naive path, each in a fresh process.

For the 124M and 355M configs, random weights are written as a Hugging Face GPT-2 folder (model.safetensors +
config.json) in a temporary folder. A fresh Python process then loads them, and reports how much its peak resident
memory grew (VmHWM, Linux) as a multiple of the weights' size on disk:

- ours: `load_gpt2(folder)` (meta-device model, memory-mapped tensors assigned as parameters), and the same after one
  forward pass, which touches every weight;
- naive: build a GPTModel (random initialisation), `safetensors.torch.load_file` the whole file, map and copy it in
  with `load_state_dict`, then one forward pass.

    python benchmarks/weights.py [--configs 124M 355M]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, torch
from pathlib import Path
folder, how = Path(sys.argv[1]), sys.argv[2]
from llm_from_scratch.gpt_model import GPTModel
from llm_from_scratch.pretrained_weights import gpt2_config, gpt2_state_dict, load_gpt2
from safetensors.torch import load_file
def peak():
    "Peak resident memory of this process so far, in bytes (VmHWM; ru_maxrss would include the parent's, from before exec)."
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return int(line.split()[1]) * 1024
base = peak()
if how == "ours":
    model = load_gpt2(folder)
else:
    cfg = gpt2_config(json.loads((folder / "config.json").read_text()))
    model = GPTModel(cfg)
    model.load_state_dict(gpt2_state_dict(load_file(str(folder / "model.safetensors")), cfg))
    model.eval()
loaded = peak()
with torch.no_grad(): model(torch.zeros(1, 8, dtype=torch.long))
print(json.dumps({"load": loaded - base, "load+forward": peak() - base}))
"""


def measure(folder: Path, how: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), how], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(configs):
    import torch
    from llm_from_scratch.gpt_model import GPT_CONFIGS, GPTModel
    from llm_from_scratch.pretrained_weights import export_to_hf, tie_output_head
    print(f"{'config':<7} {'on disk':>9} | {'ours: load':>11} {'+ forward':>10} | {'naive: load':>12} {'+ forward':>10}")
    for name in configs:
        with tempfile.TemporaryDirectory() as d:
            torch.manual_seed(0)
            model = tie_output_head(GPTModel({**GPT_CONFIGS[name], "qkv_bias": True}))
            model.out_head.weight = model.tok_emb.weight
            export_to_hf(model, d)
            del model
            size = (Path(d) / "model.safetensors").stat().st_size
            ours, naive = measure(Path(d), "ours"), measure(Path(d), "naive")
            print(f"{name:<7} {size / 2**20:>6.0f} MB | {ours['load'] / size:>10.2f}x {ours['load+forward'] / size:>9.2f}x | "
                  f"{naive['load'] / size:>11.2f}x {naive['load+forward'] / size:>9.2f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["124M", "355M"], help="model sizes (default: 124M 355M)")
    main(p.parse_args().configs)
