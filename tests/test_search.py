"""Search spaces with NNI's semantics, and `netdsl search`, `trials`, `best` end to end."""
import json
import math
import os
import re
import subprocess
import sys
import time

import optuna
import pytest

import netdsl
import netdsl_runtime as runtime
from conftest import ROOT, clear_error, kill_search_in_its_first_trial, netdsl_cli
from netdsl import NetdslError
from netdsl.search import check_space_fits, fit_point, split_values
from netdsl.search.objective import keep_if_best
from netdsl.search.options import Objectives
from netdsl.search.state import Search
from netdsl.search.twins import MAX_REDRAWS
from netdsl.search.storage import spends_budget
from netdsl.search.space import check_space, grid, load_space, sample


def draws(space, n=300, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(sample(trial, space))
        study.tell(trial, 0.0)
    return out


def test_every_type_draws_what_nni_draws():
    space = {
        "c": {"_type": "choice", "_value": [16, 32, 48]},
        "r": {"_type": "randint", "_value": [3, 10]},
        "u": {"_type": "uniform", "_value": [-1, 2]},
        "q": {"_type": "quniform", "_value": [0.1, 0.5, 0.05]},
        "l": {"_type": "loguniform", "_value": [6e-2, 6e-1]},
        "ql": {"_type": "qloguniform", "_value": [1, 1000, 10]},
        "n": {"_type": "normal", "_value": [5, 2]},
        "qn": {"_type": "qnormal", "_value": [0, 1, 0.5]},
        "ln": {"_type": "lognormal", "_value": [0, 0.5]},
        "qln": {"_type": "qlognormal", "_value": [2, 0.5, 1]},
    }
    values = draws(space)
    column = {k: [v[k] for v in values] for k in space}
    assert set(column["c"]) == {16, 32, 48}
    assert set(column["r"]) == set(range(3, 10))  # randint: [low, high)
    assert all(-1 <= v <= 2 for v in column["u"])
    assert all(0.1 <= v <= 0.5 and abs(v / 0.05 - round(v / 0.05)) < 1e-9 for v in column["q"])
    assert 0.1 in column["q"] and any(abs(v - 0.5) < 1e-12 for v in column["q"])
    assert all(6e-2 <= v <= 6e-1 for v in column["l"])
    logs = [math.log(v) for v in column["l"]]  # log-uniform: about half below the log midpoint
    assert 100 < sum(x < (math.log(6e-2) + math.log(6e-1)) / 2 for x in logs) < 200
    assert all(1 <= v <= 1000 and v % 10 == 0 or v in (1, 1000) for v in column["ql"])
    assert abs(sum(column["n"]) / len(column["n"]) - 5) < 0.4
    assert all(abs(v / 0.5 - round(v / 0.5)) < 1e-9 for v in column["qn"])
    assert all(v > 0 for v in column["ln"])
    assert all(float(v).is_integer() for v in column["qln"])


def test_nested_choice_samples_the_picked_option_only():
    space = {"block": {"_type": "choice", "_value": [
        {"_name": "wide", "layer1": {"_type": "choice", "_value": [64, 128]}},
        {"_name": "deep", "extra1": {"_type": "randint", "_value": [1, 3]}}]}}
    for values in draws(space, 60):  # NNI's form: the option, with its own keys inside
        if values["block"]["_name"] == "wide":
            assert set(values["block"]) == {"_name", "layer1"}
        else:
            assert set(values["block"]) == {"_name", "extra1"} and values["block"]["extra1"] in (1, 2)
    family = netdsl.load("param layer1 = 32\nparam extra1 = 0\na(layer1, extra=extra1) -> head(2)")
    assert split_values({"block": {"_name": "deep", "extra1": 2}, "base_wd": 1e-4}, family) == (
        {"extra1": 2}, {"base_wd": 1e-4})
    check_space_fits(space, family)
    with pytest.raises(NetdslError, match="'depth' is neither"):
        split_values({"depth": 3}, family)


@pytest.mark.parametrize("space, message", [
    ({"a": {"_type": "gauss", "_value": [0, 1]}}, "unknown _type 'gauss'"),
    ({"a": {"_type": "uniform", "_value": [2, 1]}}, "range [2, 1] is empty"),
    ({"a": {"_type": "quniform", "_value": [0, 1]}}, "quniform takes 3"),
    ({"a": {"_type": "normal", "_value": [0, -1]}}, "sigma must be positive"),
    ({"a": {"_type": "loguniform", "_value": [0, 1]}}, "positive low"),
    ({"a": {"_type": "choice", "_value": []}}, "non-empty list"),
    ({"a": {"_type": "choice", "_value": [[1, 2]]}}, "choice options must be"),
    ({"a": 3}, "needs"),
    ([], "non-empty JSON object"),
])
def test_bad_spaces_name_the_key(space, message):
    with pytest.raises(NetdslError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_space(space)


def test_grid_enumerates_as_nni():
    values = grid({"c": {"_type": "choice", "_value": [1, 2]},
                   "r": {"_type": "randint", "_value": [3, 6]},
                   "q": {"_type": "quniform", "_value": [0, 1, 0.25]}})
    assert values == {"c": [1, 2], "r": [3, 4, 5], "q": [0, 0.25, 0.5, 0.75, 1.0]}
    with pytest.raises(NetdslError, match="'u' is uniform"):
        grid({"u": {"_type": "uniform", "_value": [0, 1]}})


def test_the_seeds_space_applies_verbatim():
    space = load_space(ROOT / "models/search_space.json")
    family = netdsl.load(ROOT / "models/resnet9_cifar100.net")
    check_space_fits(space, family)
    for values in draws(space, 20):
        bindings, changes = split_values(values, family)
        assert set(changes) == {"peak_lr", "peak_epoch"}
        bound = family.bind(bindings)
        assert netdsl.load(bound.text).bind().graph == bound.graph


def test_keys_must_bind_something_and_whole_numbers_stay_whole():
    family = netdsl.load("param width = 16\nparam deep = false\na(width, res=deep) -> head(2)")
    with pytest.raises(NetdslError, match="'depth' is neither a parameter"):
        check_space_fits({"depth": {"_type": "choice", "_value": [1]}}, family)
    with pytest.raises(NetdslError, match="'width' takes whole numbers"):
        check_space_fits({"width": {"_type": "uniform", "_value": [8, 64]}}, family)
    with pytest.raises(NetdslError, match="'batch_size' takes whole numbers"):
        check_space_fits({"batch_size": {"_type": "uniform", "_value": [8, 64]}}, family)
    check_space_fits({"width": {"_type": "quniform", "_value": [8, 64, 8]},
                      "base_wd": {"_type": "loguniform", "_value": [1e-4, 1e-3]},
                      "lr_scale/a": {"_type": "uniform", "_value": [1, 3]}}, family)


def test_evaluate_is_one_call_on_loaded_data(image_folder):
    data = runtime.DeviceData(runtime.load_images(str(image_folder), image_folder / ".cache"), "cpu")
    recipe = runtime.Recipe(epochs=2, peak_epoch=1, batch_size=32, cutout=0)
    result = fit_point("param w = 4\na(w, pool) -> head(3)", data, recipe, {"w": 8, "peak_lr": 0.2})
    assert result.status == "finished" and 0 <= result.accuracy <= 1 and len(result.curve) == 2
    assert "param w = 8" in result.bound.text and result.bound.flops > 0
    assert result.recipe.peak_lr == 0.2 and result.bound.input_shape == (3, 16, 16)
    with pytest.raises(NetdslError, match="output channels"):
        fit_point("param w = 4\na(w) -> head(3)", data, recipe, {"w": 0})


# ---- the commands ---------------------------------------------------------------------------

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


def search(tmp_path, image_folder, space_file, *extra, trials=3):
    return netdsl_cli("search", "-e", FAMILY, "--space", str(space_file), "--dataset",
                      str(image_folder), "--trials", str(trials), "--name", "t", *FAST, *extra,
                      cwd=tmp_path)


def trials_json(tmp_path):
    run = netdsl_cli("trials", "--name", "t", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_search_stores_trials_and_reruns_add_nothing(tmp_path, image_folder, space_file):
    run = search(tmp_path, image_folder, space_file)
    assert run.returncode == 0, run.stderr
    rows = trials_json(tmp_path)
    assert [r["state"] for r in rows] == ["complete"] * 3
    assert all(r["dsl"].startswith("param prep = ") and r["train_time"] > 0 for r in rows)
    assert "selected on the test set: the best accuracy is optimistic" in run.stdout
    again = search(tmp_path, image_folder, space_file)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    more = search(tmp_path, image_folder, space_file, "--resume", trials=5)
    assert more.returncode == 0 and len(trials_json(tmp_path)) == 5
    nothing = netdsl_cli("search", "-e", FAMILY, "--space", str(space_file), "--dataset",
                         str(image_folder), "--trials", "5", "--name", "other", "--resume", *FAST,
                         cwd=tmp_path)
    assert nothing.returncode == 2 and "no search named 'other'" in nothing.stderr

    best = netdsl_cli("best", "--name", "t", cwd=tmp_path)
    assert best.returncode == 0
    top = max(rows + trials_json(tmp_path)[3:], key=lambda r: r["accuracy"])
    assert best.stdout == top["dsl"]  # ends with one line break, ready for $(netdsl best)
    check = netdsl_cli("check", "-e", best.stdout, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    flags = netdsl_cli("best", "--name", "t", "--flags", cwd=tmp_path).stdout.split()
    peak_lr = float(flags[flags.index("--peak-lr") + 1])
    assert peak_lr == top["values"]["peak_lr"] and float(flags[flags.index("--epochs") + 1]) == 2

    table = netdsl_cli("trials", "--name", "t", cwd=tmp_path)
    assert table.stdout.splitlines()[0].split()[:4] == ["trial", "state", "accuracy", "train"]
    # A line a trial, with what varies; the whole network with `trials NUMBER`.
    assert "param prep" not in table.stdout
    assert f"prep={rows[1]['values']['prep']} " in table.stdout.splitlines()[2]
    one = netdsl_cli("trials", "1", "--name", "t", cwd=tmp_path)
    assert one.returncode == 0 and rows[1]["dsl"] in one.stdout and "--peak-lr" in one.stdout
    assert netdsl_cli("trials", "1", "--name", "t", "--json", cwd=tmp_path).stdout.startswith(
        '{\n "number": 1,')
    netdsl_cli("trials", "--name", "t", "--csv", "t.csv", cwd=tmp_path)
    assert (tmp_path / "t.csv").read_text().startswith("number,state,accuracy")


@pytest.mark.parametrize("family", ["param w = 4 -> a(w, pool) -> head(3)",
                                    "param w = (4 +\n 4)\na(w, pool) -> head(3)"])
def test_texts_a_regex_broke_train_and_store_as_valid_trials(tmp_path, image_folder, family):
    space = tmp_path / "w.json"
    space.write_text(json.dumps({"w": {"_type": "choice", "_value": [8, 16]}}))
    run = netdsl_cli("search", "-e", family, "--space", str(space), "--dataset",
                     str(image_folder), "--trials", "2", "--name", "t", "--tuner", "grid", *FAST,
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = trials_json(tmp_path)
    assert [r["state"] for r in rows] == ["complete", "complete"]
    assert {r["dsl"] for r in rows} == {f"param w = {w}\na(w, pool)\nhead(3)\n" for w in (8, 16)}


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path, image_folder):
    space = tmp_path / "bad.json"
    space.write_text(json.dumps({"prep": {"_type": "choice", "_value": [0, 4]},
                                 "peak_lr": {"_type": "choice", "_value": [0.1, 1e12]}}))
    run = netdsl_cli("search", "-e", FAMILY, "--space", str(space), "--dataset", str(image_folder),
                     "--trials", "6", "--name", "t", "--tuner", "grid", *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = trials_json(tmp_path)
    assert len(rows) == 4  # the whole grid
    by_values = {(r["values"]["prep"], r["values"]["peak_lr"]): r for r in rows}
    assert by_values[(0, 0.1)]["state"] == "fail"
    assert "output channels must be at least 1" in by_values[(0, 0.1)]["error"]
    assert "stopped being finite" in by_values[(4, 1e12)]["error"]
    assert by_values[(4, 0.1)]["state"] == "complete"


def test_the_same_network_is_not_trained_twice(tmp_path, image_folder):
    # An endless space (x, a real number) of one network: x changes nothing.
    run = netdsl_cli("search", "-e", "param x = logrange(0.1, 1)\n" + FAMILY, "--dataset",
                     str(image_folder), "--trials", "3", "--name", "t", "--tuner", "random",
                     *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = trials_json(tmp_path)
    # Drawn again MAX_REDRAWS times without spending the budget; then the space seems to hold
    # no other network, and repeats take the first's result and count.
    assert [r["same_as"] for r in rows if not r["redrawn"]] == [None, 0, 0]
    assert sum(r["redrawn"] for r in rows) == MAX_REDRAWS
    assert len({r["accuracy"] for r in rows}) == 1


@pytest.mark.parametrize("where", ["space", "text"])
def test_a_finite_space_tried_whole_ends_the_search(tmp_path, image_folder, where):
    """Two networks, a budget of five: both are trained, and the search stops and says so
    instead of drawing repeats again and again; run again, it starts no trial."""
    space = tmp_path / "two.json"
    space.write_text(json.dumps({"prep": {"_type": "choice", "_value": [4, 8]}}))
    family = FAMILY.replace("param prep = 4", "param prep = choice(4, 8)")
    command = ["search", "-e", *([FAMILY, "--space", str(space)] if where == "space"
                                 else [family]),
               "--dataset", str(image_folder), "--trials", "5", "--name", "t", "--tuner",
               "random", *FAST]
    rows = []
    for _ in range(2):
        run = netdsl_cli(*command, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert "every one of the space's 2 networks has been tried" in run.stdout
        assert not rows or trials_json(tmp_path) == rows  # the second run starts no trial
        rows = trials_json(tmp_path)
    assert sorted(r["values"]["prep"] for r in rows if not r["redrawn"]) == [4, 8]
    assert not rows[-1]["redrawn"]  # the last trial trained the last network: then it stopped


@pytest.mark.parametrize("extra", [["--tuner", "random", "--pruner", "median"],
                                   ["--tuner", "cmaes", "--pruner", "hyperband"],
                                   ["--objectives", "accuracy,time"]])
def test_tuners_pruners_and_two_objectives(tmp_path, image_folder, space_file, extra):
    run = search(tmp_path, image_folder, space_file, *extra, trials=4)
    assert run.returncode == 0, run.stderr
    assert len(trials_json(tmp_path)) == 4
    if "accuracy,time" in extra:
        assert "Pareto front" in run.stdout
        best = netdsl_cli("best", "--name", "t", cwd=tmp_path)
        assert best.returncode == 0 and best.stdout.count("head(") == 1  # one network
        assert "of the Pareto front" in best.stderr


def test_best_of_two_objectives_retrains_one_trial_of_the_front(tmp_path, image_folder):
    """The README's retrain line, `netdsl run -e "$(netdsl best)" $(netdsl best --flags)`,
    after a search of accuracy and FLOPs: one trial, the front's most accurate unless
    --objective picks another."""
    family = "param prep = choice(4, 8, 16)\na(prep, pool) -> head(3)"
    run = netdsl_cli("search", "-e", family, "--objectives", "accuracy,flops", "--dataset",
                     str(image_folder), "--trials", "3", "--name", "t", "--tuner", "grid",
                     *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    front = [r for r in trials_json(tmp_path) if r["number"] in {
        int(n) for n in re.findall(r"trial (\d+):", run.stdout.split("Pareto front")[1])}]
    for objective, want in (("accuracy", max(front, key=lambda r: (r["accuracy"], -r["flops"]))),
                            ("flops", min(front, key=lambda r: r["flops"]))):
        text, flags = (netdsl_cli("best", "--name", "t", "--objective", objective, *extra,
                                  cwd=tmp_path) for extra in ([], ["--flags"]))
        assert (text.stdout, flags.stdout.strip()) == (want["dsl"], want["flags"]), text.stderr
        assert f"trial {want['number']}," in text.stderr
    retrain = netdsl_cli("run", "-e", netdsl_cli("best", "--name", "t", cwd=tmp_path).stdout,
                         *netdsl_cli("best", "--name", "t", "--flags", cwd=tmp_path).stdout.split(),
                         "--dataset", str(image_folder), cwd=tmp_path)
    assert retrain.returncode == 0, retrain.stderr
    clear_error(netdsl_cli("best", "--name", "t", "--objective", "time", cwd=tmp_path),
                "--objective time", "accuracy and flops")


@pytest.mark.parametrize("tuner", ["tpe", "grid"])
def test_a_killed_search_resumes_and_retries_the_trial_it_lost(tmp_path, image_folder, tuner):
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(SPACE if tuner == "tpe" else {
        "prep": {"_type": "choice", "_value": [4, 8]},
        "logits_weight": {"_type": "choice", "_value": [0.125, 0.25]}}))
    kill_search_in_its_first_trial(
        "-e", FAMILY, "--space", str(space_file), "--dataset", str(image_folder), "--trials",
        "3", "--name", "t", "--epochs", "20000", "--peak-epoch", "1", "--batch-size", "32",
        "--tuner", tuner, cwd=tmp_path)
    assert [r["state"] for r in trials_json(tmp_path)] == ["running"]
    run = search(tmp_path, image_folder, space_file, "--tuner", tuner)
    assert run.returncode == 0, run.stderr
    rows = trials_json(tmp_path)
    assert rows[0]["state"] == "fail" and rows[0]["error"] is None
    retry = next(r for r in rows if r["retry_of"] == 0)
    assert retry["values"] == rows[0]["values"] and retry["state"] == "complete"
    assert sum(r["state"] == "complete" and not r["redrawn"] for r in rows) == 3


def test_a_pruned_trial_is_stored_as_pruned_with_its_curve(tmp_path, image_folder, space_file,
                                                          monkeypatch):
    """A pruner that stops every trial after its second epoch (Optuna's median pruner, told
    so): each trial is `pruned`, spends the budget, and keeps the epochs it ran."""
    from netdsl import cli

    monkeypatch.setattr(optuna.pruners.MedianPruner, "prune",
                        lambda self, study, trial: max(trial.intermediate_values) >= 2)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NETDSL_DATA", str(tmp_path))
    assert cli.main(["search", "-e", FAMILY, "--space", str(space_file), "--dataset",
                     str(image_folder), "--trials", "2", "--name", "t", "--pruner", "median",
                     "--epochs", "4", "--peak-epoch", "1", "--batch-size", "32"]) == 0
    study = optuna.load_study(study_name="t", storage="sqlite:///netdsl.db")
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert all(len(t.user_attrs["curve"]) == 2 for t in study.trials)
    assert all(spends_budget(t) for t in study.trials)
    assert [r["state"] for r in trials_json(tmp_path)] == ["pruned", "pruned"]


@pytest.mark.parametrize("objectives, kept", [("accuracy", [2]),
                                               ("accuracy,flops", [2, 3])])
def test_a_search_keeps_only_the_networks_it_may_choose(objectives, kept):
    """With a validation split the chosen network's test accuracy is measured at the end; only
    the networks that may be chosen keep their weights until then."""
    search = Search(family=None, space={}, grid=None, base={}, recipe=None, optional=frozenset(),
                    data=None, initial=None, objectives=Objectives.parse(objectives),
                    study=None, budget=5,
                    each_epoch=False)
    networks = {}
    for number, scores in enumerate([(0.5, 10.0), (0.4, 20.0), (0.7, 30.0), (0.6, 5.0)]):
        networks[number] = object()  # a trained network, by identity
        keep_if_best(search, number, scores[:len(objectives.split(","))], networks[number])
    assert sorted(search.kept) == kept
    assert all(search.kept[n][1] is networks[n] for n in kept)


def test_bad_search_input_fails_before_training(tmp_path, image_folder, space_file):
    bad = tmp_path / "bad.json"
    bad.write_text('{"prep": {"_type": "choice", "_value": [4]}, "depth": '
                   '{"_type": "randint", "_value": [1, 3]}}')
    run = netdsl_cli("search", "-e", FAMILY, "--space", str(bad), "--dataset", str(image_folder),
                     "--trials", "2", *FAST, cwd=tmp_path)
    assert run.returncode == 2 and "'depth' is neither a parameter" in run.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"prep": ')
    run = netdsl_cli("search", "-e", FAMILY, "--space", str(broken), "--dataset",
                     str(image_folder), "--trials", "2", *FAST, cwd=tmp_path)
    assert run.returncode == 2 and "not JSON" in run.stderr
    run = search(tmp_path, image_folder, space_file, "--objectives", "accuracy,time",
                 "--pruner", "median")
    assert run.returncode == 2 and "single objective" in run.stderr
    run = search(tmp_path, image_folder, space_file, "--pruner", "median", "--evaluate", "last")
    assert run.returncode == 2 and "--evaluate last gives only the last" in run.stderr
    missing = netdsl_cli("trials", "--name", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


@pytest.mark.parametrize("storage", ["sqlite", "postgresql"])
def test_two_workers_share_one_search(tmp_path, image_folder, space_file, storage):
    """Two processes on one storage: one SQLite file (runs everywhere), or PostgreSQL."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    if storage == "postgresql":
        url = os.environ.get("NETDSL_TEST_POSTGRES")
        if not url:
            if os.environ.get("CI"):
                pytest.fail("CI must start PostgreSQL (.ci/postgres) and set NETDSL_TEST_POSTGRES")
            pytest.skip("no PostgreSQL: set NETDSL_TEST_POSTGRES to a storage URL")
    name = f"two-{os.getpid()}-{time.time_ns()}"
    # Both with the same --seed (the default), as two copies of one command would be.
    command = [sys.executable, "-m", "netdsl", "search", "-e", FAMILY, "--space", str(space_file),
               "--dataset", str(image_folder), "--trials", "6", "--name", name, "--storage", url,
               "--tuner", "random", *FAST]
    env = {"NETDSL_DATA": str(tmp_path), "PATH": "/usr/bin:/bin"}
    workers = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # none lost
    assert len({t._trial_id for t in trials}) == len(trials)              # none twice
    # The budget holds exactly; a trial started when others had filled it is marked, not run.
    assert sum(spends_budget(t) for t in trials) == 6
    assert all(t.state.name == "COMPLETE" or t.user_attrs.get("over_budget")
               or t.user_attrs.get("redrawn") for t in trials)
    # The same seed draws the same points, but a repeat is drawn again without spending the
    # budget: six distinct networks, none trained twice.
    trained = [t.user_attrs["fingerprint"] for t in trials
               if t.state.name == "COMPLETE" and t.user_attrs.get("same_as") is None]
    assert len(trained) == len(set(trained)) == 6
    # Each worker counts its own trials only.
    counts = [int(re.search(r"this process: (\d+) trials", out).group(1)) for out, _ in outputs]
    assert sum(counts) == len(trials)
    optuna.delete_study(study_name=name, storage=url)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_serves_the_search(tmp_path, image_folder, space_file):
    import urllib.request

    assert search(tmp_path, image_folder, space_file, trials=2).returncode == 0
    port = free_port()
    executable = os.path.join(os.path.dirname(sys.executable), "optuna-dashboard")
    dashboard = subprocess.Popen([executable,
                                  f"sqlite:///{tmp_path / 'netdsl.db'}", "--host", "127.0.0.1",
                                  "--port", str(port)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    studies = json.load(r)["study_summaries"]
                break
            except OSError:
                if time.monotonic() > deadline or dashboard.poll() is not None:
                    raise
                time.sleep(0.3)
        summary = next(s for s in studies if s["study_name"] == "t")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}",
                                    timeout=5) as r:
            detail = json.load(r)
        assert len(detail["trials"]) == 2
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=10)


def test_pareto_front():
    from netdsl.search.study import pareto_front

    points = [(0.80, 10.0), (0.85, 20.0), (0.70, 30.0), (0.85, 15.0), (0.90, 40.0)]
    assert pareto_front(points) == [0, 3, 4]


def plotted(study, folder, monkeypatch, capsys):
    """`plot_study` of `study` into `folder`: each figure written, by its file's name, as its
    axes' (x label, y label) and their points; and what it printed."""
    from matplotlib.figure import Figure

    from netdsl.search.study import plot_study

    figures, savefig = {}, Figure.savefig

    def keep(figure, path, **kwargs):
        figures[path.name] = [(ax.get_xlabel(), ax.get_ylabel(), [
            tuple(map(tuple, c.get_offsets())) for c in ax.collections]) for ax in figure.axes]
        savefig(figure, path, **kwargs)
    monkeypatch.setattr(Figure, "savefig", keep)
    plot_study(study, folder)
    return figures, capsys.readouterr().out


# Optuna marks its plots experimental; open_storage silences that, which this study skips.
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_repeats_are_not_plotted_against_time_and_a_table_search_plots_its_column(
        tmp_path, monkeypatch, capsys):
    """A repeat trained nothing: drawn again it has no seconds (it was plotted at 0 s, on the
    Pareto front), taking its twin's result it has its twin's. A table search's seconds are
    lookups: no time chart, and its objective is the table's column."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    from netdsl.bench.table import METRIC_ATTR

    def study_of(*trials, **attrs):
        study = optuna.create_study(study_name="t", direction="maximize")
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        for i, (accuracy, attrs) in enumerate(trials):
            study.add_trial(create_trial(value=accuracy, params={"w": i % 3},
                                         distributions={"w": CategoricalDistribution([0, 1, 2])},
                                         user_attrs=attrs))
        return study

    trained = study_of((0.5, {"train_time": 10.0}), (0.7, {"train_time": 20.0}),
                       (0.7, {"same_as": 1, "redrawn": True}),
                       (0.7, {"same_as": 1, "train_time": 20.0}), (0.6, {"train_time": 5.0}))
    figures, _ = plotted(trained, tmp_path / "a", monkeypatch, capsys)
    [(x, y, [points])] = figures["accuracy_time.png"]
    assert (x, y) == ("training time (s)", "validation accuracy")
    assert sorted(points) == [(5.0, 0.6), (10.0, 0.5), (20.0, 0.7)]
    assert figures["history.png"][0][1] == "validation accuracy"

    looked_up = study_of((81.5, {"train_time": 1e-5}), (70.25, {"train_time": 2e-5}),
                         (70.25, {"same_as": 1, "redrawn": True}), **{METRIC_ATTR: "cifar10"})
    figures, out = plotted(looked_up, tmp_path / "b", monkeypatch, capsys)
    assert "accuracy_time.png" not in figures and not (tmp_path / "b" / "accuracy_time.png"
                                                       ).exists()
    assert "accuracy_time.png not written: no trial of this search trained" in out
    assert figures["history.png"][0][1] == "cifar10"


def test_plots_are_written(tmp_path, image_folder, space_file):
    assert search(tmp_path, image_folder, space_file, trials=4).returncode == 0
    run = netdsl_cli("plot", "--name", "t", "-o", "plots", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in ("history.png", "accuracy_time.png", "importance.png"):
        assert (tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG")
    # -o names a folder: the storage file (or any file) is refused, not a FileExistsError
    database = (tmp_path / "netdsl.db").read_bytes()
    refused = netdsl_cli("plot", "--name", "t", "-o", "netdsl.db", cwd=tmp_path)
    assert refused.returncode == 2 and "that is a file" in refused.stderr
    assert "Traceback" not in refused.stderr and (tmp_path / "netdsl.db").read_bytes() == database


def test_netdsl_trial_is_an_nni_trial_command(tmp_path, image_folder):
    """The seed's NNI workflow: values from get_next_parameter (NNI's form, nested choice
    included), one intermediate result per epoch, one final result."""
    (tmp_path / "params.json").write_text(json.dumps(
        {"prep": 8, "peak_lr": 0.2, "base_wd": 1e-4, "logits_weight": 0.25}))
    env = {"NETDSL_DATA": str(tmp_path), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT / "tests" / "fake_nni"),
           "FAKE_NNI_PARAMS": str(tmp_path / "params.json"), "FAKE_NNI_LOG": str(tmp_path / "log")}
    run = subprocess.run([sys.executable, "-m", "netdsl", "trial", "-e", FAMILY, "--dataset",
                          str(image_folder), *FAST], capture_output=True, text=True, cwd=tmp_path,
                         env=env)
    assert run.returncode == 0, run.stderr
    calls = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    assert [c["call"] for c in calls] == ["get_next_parameter", "report_intermediate_result",
                                          "report_intermediate_result", "report_final_result"]
    assert calls[-1]["value"] == calls[-2]["value"]
    assert "Finished Train/Valid" in run.stdout

    (tmp_path / "params.json").write_text(json.dumps({"depth": 3}))
    bad = subprocess.run([sys.executable, "-m", "netdsl", "trial", "-e", FAMILY, "--dataset",
                          str(image_folder), *FAST], capture_output=True, text=True, cwd=tmp_path,
                         env=env)
    assert bad.returncode == 2 and "'depth' is neither" in bad.stderr


def test_shipped_nni_config_points_at_real_files():
    config = (ROOT / "models/nni/config.yml").read_text()
    assert "trialCommand: netdsl trial ../resnet9_cifar100.net" in config
    assert (ROOT / "models/nni/../search_space.json").exists()
    assert (ROOT / "models/nni/../resnet9_cifar100.net").exists()


# ---- a search refuses before its first trial what would fail them all ------------------------

@pytest.mark.parametrize("where", ["text", "space"])
def test_a_stored_search_whose_choices_changed_is_refused_before_any_trial(
        tmp_path, image_folder, where):
    """An option added under the same name failed every trial (Optuna cannot change a
    choice's options) and exited 0; now refused before the data loads."""
    def command(options):
        if where == "text":
            return ["-e", f"param prep = choice({', '.join(map(str, options))})\n"
                    "a(prep, pool) -> head(3)"]
        (tmp_path / "space.json").write_text(json.dumps(
            {"prep": {"_type": "choice", "_value": options}}))
        return ["-e", FAMILY, "--space", "space.json"]

    first = netdsl_cli("search", *command([4, 8]), "--dataset", str(image_folder), "--trials",
                       "1", "--name", "t", *FAST, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    clear_error(netdsl_cli("search", *command([4, 8, 16]), "--dataset", "/nowhere", "--trials",
                           "3", "--name", "t", *FAST, cwd=tmp_path),
                "'prep'", "the options 4, 8;", "the options 4, 8, 16", "--name")
    assert len(trials_json(tmp_path)) == 1


def test_a_grid_refusal_names_the_choice_some_networks_lack_before_the_data_loads(tmp_path):
    text = ("param w = choice(4, 8)\nblock inner(c) {\n    x: choice(conv(c), identity)\n}\n"
            "m: choice(conv(w), inner(w)) -> head(3)")
    clear_error(netdsl_cli("search", "-e", text, "--tuner", "grid", "--dataset", "/nowhere",
                           "--trials", "2", cwd=tmp_path),
                "choice 'm/x' is met only for some values of other choices")


def test_a_validation_split_that_leaves_less_than_a_batch_is_refused(tmp_path, image_folder):
    run = netdsl_cli("search", "-e", "param prep = choice(4, 8)\na(prep, pool) -> head(3)",
                     "--dataset", str(image_folder), "--valid-split", "90", "--trials", "2",
                     *FAST, cwd=tmp_path)
    clear_error(run, "--batch-size 32 is more than the 6 training images",
                "smaller --valid-split")
    assert "trial 0" not in run.stdout


def test_trials_says_why_an_interrupted_trial_failed(tmp_path):
    """A trial whose process was killed is marked failed by the storage, with no error of
    its own; `trials` says what happened and what became of its values."""
    from netdsl.search.storage import retry

    study = optuna.create_study(study_name="t", storage=f"sqlite:///{tmp_path / 'netdsl.db'}")
    lost = study.ask({"prep": optuna.distributions.CategoricalDistribution([4, 8])})
    study.tell(lost, state=optuna.trial.TrialState.FAIL)  # as fail_stale_trials marks it
    table = netdsl_cli("trials", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "its process was killed" in table.stdout
    assert "tried again when the search goes on" in table.stdout
    retry(study, study.trials[0])
    study.ask()
    assert "tried again as trial 1" in trials_json(tmp_path)[0]["interrupted"]


@pytest.mark.parametrize("command", ["trial", "run", "search"])
def test_a_bad_weights_file_fails_before_any_data_moves(tmp_path, command):
    """Every command that trains runs one prologue (train/prologue.py; supernet refuses
    --init-from): the weights are read before the data loads. Here the data could never load
    (a folder that is not there), so an error naming the weights file says they were read
    first; `netdsl trial` loaded the data first."""
    (tmp_path / "params.json").write_text("{}")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    env = {"NETDSL_DATA": str(tmp_path), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT / "tests" / "fake_nni"),
           "FAKE_NNI_PARAMS": str(tmp_path / "params.json"), "FAKE_NNI_LOG": str(tmp_path / "log")}
    family = "param w = choice(4, 8)\na(w) -> head(3)" if command == "search" else FAMILY
    flag = ["--trials", "1"] if command == "search" else []
    run = subprocess.run([sys.executable, "-m", "netdsl", command, "-e", family, "--dataset",
                          str(tmp_path / "no-such-folder"), "--init-from", "bad.pt", *flag,
                          *FAST], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "bad.pt" in run.stderr and "no-such-folder" not in run.stderr, run.stderr
