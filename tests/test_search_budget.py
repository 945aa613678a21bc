"""A search's budget and storage hold on every path: a resume that would change what a trial's
values mean is refused, no trial is spent on nothing, a small space is covered whatever the
tuner, and the storage is written only by a search and read as it is by the views."""
import sqlite3
import subprocess
import sys

import optuna
import pytest

from conftest import clear_error, netdsl_cli
from netdsl import NetdslError
from netdsl.search import loop, objective, storage, study as views
from test_table import NB201, SETS, nb201_rows, write_table

# Two more edges fixed than test_table's: 25 networks.
SMALLER = [*SETS, "--set", "e3_0=nor_conv_1x1"]


def table_search(tmp_path, *args, sets=SETS):
    table = tmp_path / "t.csv"
    if not table.exists():
        write_table(table, nb201_rows())
    return netdsl_cli("search", NB201, *sets, "--table", table, "--metric", "cifar10", *args,
                      cwd=tmp_path)


def stored(tmp_path, name="nb201"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/netdsl.db")


def distinct_networks(study) -> int:
    return len({t.user_attrs["fingerprint"] for t in study.trials
                if storage.spends_budget(t)})


def test_resuming_with_other_objectives_is_refused_naming_the_stored_ones(tmp_path):
    first = table_search(tmp_path, "--trials", "4", "--objectives", "accuracy,flops")
    assert first.returncode == 0, first.stderr
    for other in ("accuracy",):
        again = table_search(tmp_path, "--trials", "8", "--objectives", other)
        clear_error(again, "search 'nb201' began with --objectives accuracy,flops",
                    f"cannot go on with --objectives {other}")
    study = stored(tmp_path)
    assert study.user_attrs["objectives"] == "accuracy,flops" and len(study.trials) == 4


def two_values_at_first(monkeypatch, calls: list):
    """A seam: the first five trials' results hold two values for the one objective."""
    real = objective._train_trial

    def result(trial, search, values):
        calls.append(trial.number)
        value = real(trial, search, values)
        return (value, 1.0) if len(calls) <= 5 else value
    monkeypatch.setattr(objective, "_train_trial", result)


def test_a_result_that_does_not_fit_the_objectives_fails_its_trial_and_spends_it(
        tmp_path, monkeypatch):
    """Optuna fails such a trial without an error, spending no budget: drawn again and again,
    the search never ended."""
    calls = []
    two_values_at_first(monkeypatch, calls)
    run = table_search(tmp_path, "--trials", "3")
    assert run.returncode == loop.EXIT_FAILED and calls == [0, 1, 2], (run.stdout, run.stderr)
    trials = stored(tmp_path).trials
    assert len(trials) == 3 and all(storage.spends_budget(t) for t in trials)
    assert "is not a finite number for each objective (accuracy)" in trials[0].user_attrs["error"]


def test_the_loop_stops_at_a_trial_that_spent_nothing_unasked(tmp_path, monkeypatch):
    """The guard behind that check: any trial Optuna fails on its own stops the search."""
    calls = []
    two_values_at_first(monkeypatch, calls)
    monkeypatch.setattr(objective, "_checked", lambda result, search: result)
    run = table_search(tmp_path, "--trials", "3")
    clear_error(run, "trial 0 failed inside Optuna without an error of its own", "stopped")
    assert calls == [0] and len(stored(tmp_path).trials) == 1


def test_a_table_search_resumed_with_another_seed_repeats_no_lookup(tmp_path):
    assert table_search(tmp_path, "--trials", "12", "--seed", "0", sets=SMALLER).returncode == 0
    more = table_search(tmp_path, "--trials", "24", "--seed", "1", sets=SMALLER)
    assert more.returncode == 0, more.stderr
    assert "24 of 24 trials done" in more.stdout
    assert distinct_networks(stored(tmp_path)) == 24


class Stuck(optuna.samplers.BaseSampler):
    """A sampler that has settled on one network: every point's first option."""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, name, distribution):
        return distribution.choices[0]


def test_a_sampler_that_keeps_repeating_still_covers_a_space_smaller_than_its_trials(
        tmp_path, monkeypatch):
    """TPE and CMA-ES settle on a few networks and draw them again and again (TPE tried 123
    of 125 networks in 130 trials); a few repeats in a row, and the next trial takes an
    untried network, so every one is tried."""
    monkeypatch.setattr(loop, "make_sampler", lambda *args: Stuck())
    run = table_search(tmp_path, "--trials", "40", sets=SMALLER)
    assert run.returncode == 0, run.stderr
    assert "every one of the space's 25 networks has been tried" in run.stdout
    assert distinct_networks(stored(tmp_path)) == 25


def test_tpe_with_a_prefilter_covers_a_space_smaller_than_its_trials(tmp_path):
    run = table_search(tmp_path, "--trials", "40", "--tuner", "tpe", "--prefilter", "flops:6",
                       sets=SMALLER)
    assert run.returncode == 0, run.stderr
    assert distinct_networks(stored(tmp_path)) == 25


def test_a_search_whose_every_trial_failed_exits_non_zero_with_the_count(tmp_path,
                                                                         monkeypatch):
    def no_value(trial, table, bound, values, multi):
        raise NetdslError("no value for this network")
    monkeypatch.setattr(objective, "look_up_trial", no_value)
    run = table_search(tmp_path, "--trials", "3")
    assert run.returncode == loop.EXIT_FAILED, (run.stdout, run.stderr)
    assert "all 3 trials failed: netdsl trials --name nb201 shows why" in run.stdout


def test_an_output_over_a_search_storage_is_refused(tmp_path):
    assert table_search(tmp_path, "--trials", "2").returncode == 0
    before = (tmp_path / "netdsl.db").read_bytes()
    for command in (["run", "-e", "a(8) -> head(3)", "--dataset", "cifar10", "--json",
                     "netdsl.db"],
                    ["draw", "-e", "a(8) -> head(3)", "-o", "netdsl.db"]):
        refused = netdsl_cli(*command, cwd=tmp_path)
        clear_error(refused, "netdsl.db is an SQLite database", "give another file")
    assert (tmp_path / "netdsl.db").read_bytes() == before


def test_a_finished_search_leaves_one_file_that_the_views_read_without_writing(tmp_path):
    """At its end a search moves its write-ahead log into the database file (a copy of
    netdsl.db alone holds every trial); the views open it read-only."""
    assert table_search(tmp_path, "--trials", "3").returncode == 0
    assert not (tmp_path / "netdsl.db-wal").exists()
    with sqlite3.connect(tmp_path / "netdsl.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    before = (tmp_path / "netdsl.db").stat().st_mtime_ns
    (tmp_path / "netdsl.db").chmod(0o444)
    for view in (["trials"], ["best"], ["trials", "--json"]):
        shown = netdsl_cli(*view, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("netdsl.db")) == \
        ["netdsl.db"]
    assert (tmp_path / "netdsl.db").stat().st_mtime_ns == before
    read = storage.open_storage(f"sqlite:///{tmp_path}/netdsl.db", create=False)
    with pytest.raises(optuna.exceptions.StorageInternalError) as refused:
        read.set_study_user_attr(read.get_all_studies()[0]._study_id, "x", 1)
    assert "attempt to write a readonly database" in str(refused.value.__cause__)


def test_trials_and_a_resume_read_the_trials_once_however_many(tmp_path, monkeypatch):
    """Work linear in the trials: `trials` reads them and the search's attributes once (each
    trial's look-up of its test accuracy was a query; each interrupted trial's check of
    whether it was tried again read every trial; finding the search by its name read every
    trial of every search)."""
    assert table_search(tmp_path, "--trials", "20").returncode == 0
    study = stored(tmp_path)
    for trial in study.trials[:10]:  # as if interrupted: failed without an error
        study.add_trial(optuna.trial.create_trial(params=trial.params,
                                                  distributions=trial.distributions,
                                                  state=optuna.trial.TrialState.FAIL))
    trials = len(study.trials)
    reads = {"trials": 0, "attrs": 0}
    cached = optuna.storages._cached_storage._CachedStorage  # what a study reads through
    real_trials, real_attrs = cached.get_all_trials, cached.get_study_user_attrs

    def count(kind, real):
        def counted(self, *args, **kwargs):
            reads[kind] += 1
            return real(self, *args, **kwargs)
        return counted
    monkeypatch.setattr(cached, "get_all_trials", count("trials", real_trials))
    monkeypatch.setattr(cached, "get_study_user_attrs", count("attrs", real_attrs))
    opened = views.stored_study(f"sqlite:///{tmp_path}/netdsl.db", None)  # no trial read
    assert reads["trials"] == 0
    rows = views.trial_rows(opened)
    assert len(rows) == trials and reads == {"trials": 1, "attrs": 1}
    storage.retry_interrupted(study)
    assert reads["trials"] == 2
    assert sum(t.state == optuna.trial.TrialState.WAITING for t in study.trials) == 10


def test_a_table_search_without_images_imports_no_torch(tmp_path):
    """A lookup trains nothing: torch was 560 of the 700 MB such a search peaked at."""
    table = write_table(tmp_path / "t.csv", nb201_rows())
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from netdsl.cli import main; "
         f"code = main(['search', {NB201!r}, *{SETS!r}, '--table', {str(table)!r}, "
         "'--metric', 'cifar10', '--trials', '3']); "
         "print(code, 'torch' in sys.modules)"],
        capture_output=True, text=True, cwd=tmp_path)
    assert probe.stdout.splitlines()[-1] == "0 False", probe.stderr


def test_a_trial_attribute_is_named_once_and_a_misspelt_one_fails_where_it_is_used(tmp_path):
    """A search writes and reads each trial's attributes by the names search/record.py lists:
    a key spelt wrong fails there, not as a None read later."""
    from netdsl.search.record import KEYS, Record, attrs, record

    assert table_search(tmp_path, "--trials", "3").returncode == 0
    trial = stored(tmp_path).trials[0]
    assert set(trial.user_attrs) <= set(KEYS)  # every attribute a search stores is listed
    assert Record(trial).fingerprint == trial.user_attrs["fingerprint"]
    assert Record(trial).error is None and Record(trial).get("same_as", 7) == 7
    with pytest.raises(AttributeError, match="no trial attribute 'fingerprnt'"):
        Record(trial).fingerprnt
    with pytest.raises(AttributeError, match="no trial attribute 'redrawm'"):
        record(trial, redrawm=True)
    with pytest.raises(AttributeError, match="no trial attribute 'retry'"):
        attrs(retry=1)
