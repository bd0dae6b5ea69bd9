"""pytest runs every notebook in nbs/ as one test item, through nbdev's own notebook runner.

Cells flagged with one of `tst_flags` in pyproject.toml (`slow`, `cuda`) are skipped, as `nbdev-test` skips them;
`pytest --nb-flags "slow cuda"` runs them too.
"""
import io
import os
import sys

import pytest
from nbdev.config import get_config


def pytest_configure(config):
    "Share the cores among pytest-xdist's workers: each worker, and every command it starts, gets cores / workers threads."
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))   # set in each worker process
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:   # (a thread count given by the user wins)
        # two workers of two threads each on two cores wait on each other in OpenMP's barriers: seen 10x slower here
        threads = max(1, len(os.sched_getaffinity(0)) // workers) if hasattr(os, "sched_getaffinity") else max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch
        torch.set_num_threads(threads)


def pytest_addoption(parser):
    parser.addoption("--nb-flags", default="", help="space-separated notebook flags to run anyway (e.g. 'slow cuda')")


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".ipynb" and not file_path.name.startswith(("_", ".")) and ".ipynb_checkpoints" not in file_path.parts:
        return NotebookFile.from_parent(parent, path=file_path)


class NotebookFile(pytest.File):
    def collect(self):
        yield NotebookItem.from_parent(self, name=self.path.stem)


class NotebookItem(pytest.Item):
    def runtest(self):
        from nbdev.test import test_nb
        cfg = get_config(self.path.parent)
        skip_flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
        force_flags = self.config.getoption("--nb-flags").split()
        # test_nb writes a failing cell's traceback to sys.__stderr__: keep it for the report
        err, real_stderr = io.StringIO(), sys.__stderr__
        sys.__stderr__ = err
        try:
            ok, _ = test_nb(self.path, skip_flags=skip_flags, force_flags=force_flags, basepath=cfg.config_path,
                            cell_timeout=cfg.cell_timeout or None)
        finally:
            sys.__stderr__ = real_stderr
        if not ok: raise NotebookFailed(err.getvalue().strip() or f"{self.path.name} failed")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NotebookFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"notebook {self.path.name}"


class NotebookFailed(Exception):
    "A notebook cell raised."
