"""The recipe describes itself: every field is a flag and a search key, and the flags of a
recipe give it back exactly."""
import re
from dataclasses import fields

import pytest

from conftest import ROOT
from netdsl import NetdslError
from netdsl.cli import build_parser
from netdsl.commands.flags import recipe_of
from netdsl.train.settings import apply, is_recipe_key, recipe_flags, search_keys
from netdsl_runtime.recipe import Recipe, check_value, kind

NAMES = [f.name for f in fields(Recipe)]


def parse_run(*flags):
    return build_parser().parse_args(["run", "-e", "a(4) -> head(2)", "--dataset", "x", *flags])


def other_value(f):
    """A value of field `f` other than its default, read off its type and range: a field added
    to the Recipe is covered by these tests without a line here."""
    meta, default = f.metadata, f.default
    if kind(f) is bool:
        return not default
    if kind(f) is str:
        return next(choice for choice in meta["choices"] if choice != default)
    if kind(f) is dict:
        return {"layer3": 2.0, "prep/conv": 0.5}
    for candidate in ((default or 1) / 2, (default or 1) + 1, (default or 1) * 2):
        candidate = kind(f)(candidate) if kind(f) is int else candidate + 0.0123
        try:
            check_value(f, candidate)
        except ValueError:
            continue
        if candidate != default:
            return candidate
    raise AssertionError(f"no other value found for {f.name}")


OTHER = Recipe(**{f.name: other_value(f) for f in fields(Recipe)})
OTHER.check()  # the values together are a recipe too


@pytest.mark.parametrize("name", NAMES)
def test_each_field_is_set_by_its_flag_and_by_its_search_key(name):
    """Alone, each flag and each search key sets its field to the value given, and nothing
    else; its help says what it is."""
    groups = []  # each flag with the value after it, if any
    for token in recipe_flags(Recipe(**{name: getattr(OTHER, name)})):
        if token.startswith("--"):
            groups.append([token])
        else:
            groups[-1].append(token)
    field_of = lambda flag: flag[2:].removeprefix("no-").replace("-", "_")
    mine = [token for group in groups if field_of(group[0]) == name for token in group]
    expected = Recipe(**{name: getattr(OTHER, name)})
    assert recipe_of(parse_run(*mine))[0] == expected, mine
    value = getattr(OTHER, name)
    changes = ({f"{name}/{entry}": factor for entry, factor in value.items()}
               if isinstance(value, dict) else {name: value})
    assert all(is_recipe_key(key) for key in changes) and name in search_keys()
    assert apply(Recipe(), changes) == expected
    help_text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert Recipe.__dataclass_fields__[name].metadata["help"].split()[0] in help_text


@pytest.mark.parametrize("recipe", [Recipe(), OTHER])
def test_flags_give_the_recipe_back_exactly(recipe):
    assert all(getattr(recipe, name) != getattr(Recipe(), name) for name in NAMES) or (
        recipe == Recipe())  # the second recipe changes every field
    assert recipe_of(parse_run(*recipe_flags(recipe)))[0] == recipe
    # from any preset: every field is spelled out
    assert recipe_of(parse_run("--recipe", "airbench94", *recipe_flags(recipe)))[0] == \
        recipe


def test_defaults_of_the_command_line_are_the_recipes():
    assert recipe_of(parse_run()) == (Recipe(), frozenset())


def test_a_default_that_depends_on_another_setting_follows_it():
    assert Recipe(epochs=1).peak == pytest.approx(5 / 24)
    assert Recipe().peak == 5 and Recipe(epochs=48).peak == 10
    assert Recipe(epochs=2, peak_epoch=0.5).peak == 0.5
    Recipe(epochs=1).check()  # the seed's peak at epoch 5 would not fit one epoch


def test_search_keys_set_fields_with_their_types():
    recipe = apply(Recipe(lr_scale={"prep": 3.0}), {
        "epochs": 3, "base_wd": 1e-4, "tta": 2.0, "lr_scale/layer3": 2, "precision": "fp32",
        "kind_lr_scale/BatchNorm2d.bias": 64, "batch_size": 128.0})
    assert recipe.epochs == 3 and isinstance(recipe.epochs, float)
    assert recipe.batch_size == 128 and isinstance(recipe.batch_size, int)
    assert recipe.weight_decay == 1e-4 and recipe.tta == 2 and recipe.precision == "fp32"
    assert recipe.lr_scale == {"prep": 3.0, "layer3": 2} and isinstance(recipe.tta, int)
    assert recipe.kind_lr_scale == {"BatchNorm2d.bias": 64.0}


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 2.5}, "'batch_size': batch_size must be a whole number"),
    ({"epochs": 0}, "'epochs': epochs must be at least 0.001"),
    ({"momentum": 1.0}, "'momentum': momentum must be below 1"),
    ({"precision": "fp8"}, "'precision': precision must be one of"),
    ({"tta": 3}, "'tta': tta must be below 3"),
    ({"flip": "sideways"}, "'flip': flip must be one of random, alternate, none"),
    ({"lr_scale/layer3": -1}, "lr_scale layer3 must be at least 0"),
    ({"peak_epoch": 30}, "peak_epoch must be between 0 and epochs"),
])
def test_bad_search_values_name_the_key(changes, message):
    with pytest.raises(NetdslError, match=re.escape(message)):
        apply(Recipe(), changes)


def test_field_names_are_written_once_where_flags_keys_and_json_are_made():
    """Flags, search keys, --flags and the JSON are read off the fields: the code that makes
    them spells no field's name as a string (the seed's two aliases aside)."""
    makers = ["cli.py", "commands/run.py", "commands/flags.py", "train/settings.py", "train/fitting.py",
              "search/values.py", "search/objective.py", "search/loop.py", "search/study.py",
              "search/nni.py"]
    code = "\n".join(line for path in makers for line in (ROOT / "netdsl" / path).read_text()
                     .splitlines() if not line.startswith("SEED_NAMES"))
    for name in NAMES:
        assert not re.search(rf"[\"']{name}[\"']", code), name
