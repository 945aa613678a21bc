"""Two `netdsl search` workers sharing one search through one SQLite file: runs everywhere,
unlike the PostgreSQL test in test_search.py. Driven only through the command line and Optuna."""
import json
import subprocess
import sys

import optuna
import pytest

from conftest import ROOT

SPACE = {"prep": {"_type": "choice", "_value": [4, 8]},
         "peak_lr": {"_type": "loguniform", "_value": [0.05, 0.5]},
         "logits_weight": {"_type": "quniform", "_value": [0.1, 0.5, 0.05]}}
FAMILY = "param prep = 4\nparam logits_weight = 0.125\na(prep, pool) -> b(8, pool) -> head(3, w=logits_weight)"
FAST = ["--epochs", "2", "--peak-epoch", "1", "--batch-size", "32", "--cutout", "0"]


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(SPACE))
    return path


def test_two_workers_share_one_search_through_one_sqlite_file(tmp_path, image_folder, space_file):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    name = "two"
    command = [sys.executable, "-m", "netdsl", "search", "-e", FAMILY, "--space", str(space_file),
               "--dataset", str(image_folder), "--trials", "6", "--name", name, "--storage", url,
               "--tuner", "random", *FAST]
    # The checkout's netdsl, whatever the working directory (tmp_path) is.
    env = {"NETDSL_DATA": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen(command + ["--seed", str(seed)], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for seed in (1, 2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # none lost
    assert len({t._trial_id for t in trials}) == len(trials)              # none twice
    assert all(t.state.name == "COMPLETE" for t in trials)
    # The budget is shared: 6, or one over when both workers start the last trial at once.
    assert 6 <= len(trials) <= 7
