"""`python -m llm_from_scratch`: the `llmfs` command line, which nbs/engine/07_cli.ipynb exports to `engine/cli.py`.

Written by hand, like `__init__.py`: nbdev exports a notebook to one module, and this shim only has to call it."""
from llm_from_scratch.engine.cli import main

if __name__ == "__main__": raise SystemExit(main())
