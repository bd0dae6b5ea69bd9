"The hyperparameter search (nbs/engine/05_tuning, Optuna): a tiny search, resume, a killed run, pruning, a non-finite loss, two processes, llmfs tune."
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import torch
from matplotlib.figure import Figure
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from llm_from_scratch.engine import tuning as tune
from llm_from_scratch.text_data import download
from llmfs_helpers import llmfs

torch.set_num_threads(1)  # two shared cores
optuna.logging.set_verbosity(optuna.logging.WARNING)

TEXT = download("the-verdict.txt").read_text(encoding="utf-8")[:1600]  # ~400 tokens: 19 windows of 16 to train on
KW = dict(text=TEXT, config="tiny", context_length=16, max_epochs=1, train_ratio=0.75, eval_freq=1, eval_iter=1,
          progress=False)


def finished(study): return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_grid_is_the_books():
    assert tune.HPARAM_GRID == {
        "batch_size": [2, 4, 8, 16], "drop_rate": [0.0, 0.1, 0.2], "warmup_iters": [10, 20, 30],
        "weight_decay": [0.1, 0.01, 0.0], "peak_lr": [0.0001, 0.0005, 0.001, 0.005], "initial_lr": [0.00005, 0.0001],
        "min_lr": [0.00005, 0.00001, 0.0001], "n_epochs": [5, 10, 15, 20, 25]}
    params = tune.book_search_space(optuna.create_study().ask())
    assert all(params[k] in v for k, v in tune.HPARAM_GRID.items())


def test_search_table_plot_and_resume(tmp_path):
    db = tmp_path/"search.db"
    study = tune.tune(3, db, **KW)
    assert db.is_file() and len(finished(study)) == 3 == len(study.trials)
    assert {t.user_attrs["pid"] for t in study.trials} == {os.getpid()}  # n_jobs=1 trains in this process
    table = tune.trials_table(study)
    assert list(table.columns[:3]) == ["number", "state", "val_loss"] and set(tune.HPARAM_GRID) <= set(table.columns)
    complete = table[table.state == "COMPLETE"].val_loss.tolist()
    assert complete == sorted(complete) and len(table) == 3
    done = table[table.state == "COMPLETE"]
    assert (done.trained_epochs == done.n_epochs.clip(upper=KW["max_epochs"])).all()  # what each trial trained: the cap, not n_epochs
    fig = tune.plot_trials(study)
    assert isinstance(fig, Figure) and len(fig.axes) == 1 + len(tune.HPARAM_GRID)
    fig.savefig(tmp_path/"trials.png")
    # resume: the cap counts the trials of earlier runs
    study = tune.tune(4, db, **KW)
    assert len(finished(study)) == 4 == len(study.trials) and study.trials[-1].number == 3
    assert len(finished(tune.tune(4, db, **KW))) == 4  # nothing left to do
    with pytest.raises(ValueError, match="other settings"): tune.tune(5, db, **{**KW, "context_length": 8})
    with pytest.raises(ValueError, match="larger than the tiny model's context length of 64"):   # not a model pretrain would build
        tune.tune(1, tmp_path/"other.db", **{**KW, "context_length": 128})


KILLED_RUN = """
import json, pathlib, sys, time
from llm_from_scratch.engine import tuning as tune
storage, marker, kw = sys.argv[2], pathlib.Path(sys.argv[3]), json.loads(pathlib.Path(sys.argv[4]).read_text())
real = tune.train_trial
def slow(params, text, cfg, trial=None, *args, **kwargs):
    if trial.number == 1: marker.write_text("running"); time.sleep(600)  # killed here
    return real(params, text, cfg, trial, *args, **kwargs)
tune.train_trial = slow
tune.tune(3, storage, **kw)
"""


def test_killed_run_is_retried(tmp_path):
    db, marker, kw_file, script = tmp_path/"killed.db", tmp_path/"running", tmp_path/"kw.json", tmp_path/"run.py"
    kw_file.write_text(json.dumps(KW)); script.write_text(KILLED_RUN)
    proc = subprocess.Popen([sys.executable, str(script), "-", str(db), str(marker), str(kw_file)])
    try:
        deadline = time.time() + 120
        while not marker.exists():
            assert proc.poll() is None and time.time() < deadline, "the run ended before trial 1 started"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL); proc.wait()
    before = optuna.load_study(study_name="llmfs-tune", storage=f"sqlite:///{db}")
    assert [t.state for t in before.trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    study = tune.tune(3, db, **KW)
    dead = study.trials[1]
    assert dead.state == TrialState.FAIL and "died" in tune.fail_reason(study, dead)
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retry) == 1 and retry[0].params == dead.params and retry[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retry[0].user_attrs["pid"] == os.getpid() and tune.fail_reason(study, retry[0]) is None
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING)) and len(finished(study)) == 3


def test_bad_trial_is_pruned(tmp_path):
    db = tmp_path/"pruned.db"
    good = optuna.create_study(study_name="llmfs-tune", storage=f"sqlite:///{db}", direction="minimize")
    dists = {k: CategoricalDistribution(v) for k, v in tune.HPARAM_GRID.items()}
    for i in range(3):  # finished trials far better at every step than an untrained model (ln 50257 = 10.8)
        params = {k: v[i % len(v)] for k, v in tune.HPARAM_GRID.items()}
        good.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=1.0,
                                                 intermediate_values={s: 1.0 for s in range(10)}))
    study = tune.tune(4, db, **KW, pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0))
    new = study.trials[3]
    assert new.state == TrialState.PRUNED and list(new.intermediate_values) == [0] and new.value > 5
    assert "worse than the pruner allows" in new.user_attrs["pruned_reason"]
    assert tune.trials_table(study).state.tolist() == ["COMPLETE"] * 3 + ["PRUNED"]


def test_non_finite_loss_prunes_the_trial(tmp_path):
    grid = {**{k: v[:1] for k, v in tune.HPARAM_GRID.items()}, "peak_lr": [1e30]}  # diverges in the warmup
    study = tune.tune(1, tmp_path/"nan.db", **KW, grid=grid)
    (t,) = study.trials
    assert t.state == TrialState.PRUNED and "non-finite" in t.user_attrs["pruned_reason"]


def test_two_worker_processes(tmp_path):
    study = tune.tune(4, tmp_path/"par.db", **KW, n_jobs=2)
    assert len(finished(study)) == 4 == len(study.trials)  # the cap holds with two workers
    pids = {t.user_attrs["pid"] for t in study.trials}
    assert len(pids) == 2 and os.getpid() not in pids


def test_llmfs_tune_writes_the_table_and_plot_and_resumes(tmp_path):
    (tmp_path/"short.txt").write_text(TEXT, encoding="utf-8")
    args = ["tune", "--trials", 3, "--config", "tiny", "--context-length", 16, "--max-epochs", 1, "--train-ratio", 0.75,
            "--data", tmp_path/"short.txt", "--storage", tmp_path/"runs/study.db", "--device", "cpu"]
    r = llmfs(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("trial ") >= 3 and "Best: trial" in r.stdout
    assert "of those epochs: --max-epochs)" in r.stdout   # the grid's n_epochs (5 or more) against the 1 epoch trained
    rows = (tmp_path/"runs/trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,val_loss") and len(rows) == 4
    assert (tmp_path/"runs/trials.png").read_bytes()[:4] == b"\x89PNG"
    r = llmfs(*args[:2], 4, *args[3:])   # one more trial: the study resumes
    assert r.returncode == 0, r.stderr
    assert len((tmp_path/"runs/trials.csv").read_text().splitlines()) == 5
    r = llmfs(*args[:5], "--context-length", 8, *args[7:])
    assert r.returncode == 2 and "other settings" in r.stderr and "Traceback" not in r.stderr
    r = llmfs(*args[:5], "--context-length", 128, *args[7:])
    assert r.returncode == 2 and "larger than the tiny model's context length of 64" in r.stderr
