"""The trainer's settings as the command line and a search space see them, all read off
`runtime.Recipe`'s fields: a flag's name per field (`--peak-lr`; the flags themselves are
`commands.flags.add_recipe_flags`), a search key per field (`peak_lr`), and the flags that give
a recipe back (`netdsl best --flags`). A field added to the Recipe is a flag and a key without
a line changed.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

from netdsl_runtime.recipe import (DEFAULT_PRESET, MAPPINGS, Recipe, RecipeError, as_field_type,
                            check_value, kind, presets, read_recipe, updated)

from ..errors import ArgumentError, NetdslError

RECIPE_FIELDS = {f.name: f for f in fields(Recipe)}
SEED_NAMES = {"base_wd": "weight_decay", "total_epoch": "epochs"}  # the seed's NNI space's names
# A field that maps names to values (MAPPINGS: the learning-rate scales...) is set one entry at
# a time by a search key "FIELD/ENTRY": "lr_scale/layer3" sets the factor of prefix layer3.


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def recipe_file(name_or_path: str) -> str | None:
    """The file `--recipe` reads, or None for a preset."""
    return None if name_or_path in presets() else name_or_path


def recipe_from_flags(recipe: str, unset: list[str], given: dict[str, Any]
                      ) -> tuple[Recipe, frozenset[tuple[str, str]]]:
    """The Recipe the flags ask for: `recipe`'s (a preset's name or a file), less the `unset`
    entries (FIELD/ENTRY, or a whole FIELD), with each field `given` (a flag per field) set
    over it; and the (field, entry) pairs of its mappings that a preset set (they apply where
    the network has what they name, see `netdsl.train.applicable_recipe`). A bad value is a
    NetdslError naming the field, a bad recipe file an ArgumentError of `recipe` naming the
    file and key, a bad entry to unset one of `unset`."""
    try:
        base, optional = read_recipe(recipe)
    except RecipeError as e:
        unread = str(e)
        raise ArgumentError(lambda named: f"{named('recipe')}: {unread}") from None
    mappings = {name: dict(getattr(base, name)) for name in MAPPINGS}
    for text in unset:
        name, _, entry = text.partition("/")
        name = name.replace("-", "_")
        if name not in MAPPINGS:
            raise ArgumentError(lambda named: f"bad option: {named('unset', text)}: '{name}' is "
                                f"not one of the recipe's mappings ({', '.join(MAPPINGS)})")
        if entry and entry not in mappings[name]:
            have = ", ".join(mappings[name]) or "no entries"
            raise ArgumentError(lambda named: f"bad option: {named('unset', text)}: the "
                                f"recipe's {name} has no entry '{entry}' (it has {have})")
        for key in [entry] if entry else list(mappings[name]):
            del mappings[name][key]
    values = dict(given)
    for name in MAPPINGS:  # given as a list of (entry, value) flags, added to the recipe's
        entries = dict(values.get(name, ()))
        optional -= {(name, entry) for entry in entries}  # the user's own from here on
        values[name] = {**mappings[name], **entries}
    return checked(updated(base, values), "bad option"), optional


def checked(recipe: Recipe, what: str) -> Recipe:
    try:
        recipe.check()
    except ValueError as e:
        raise NetdslError(f"{what}: {e}") from None
    return recipe


def recipe_flags(recipe: Recipe) -> list[str]:
    """The flags that give `recipe` back, every field spelled out over the seed's recipe (so a
    later change of a default changes nothing, and mappings hold only their own entries)."""
    out: list[str] = ["--recipe", DEFAULT_PRESET]
    for name, value in vars(recipe).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out.append(flag(name) if value else "--no-" + flag(name)[2:])
        elif isinstance(value, dict):
            for prefix, factor in value.items():
                out += [flag(name), f"{prefix}={factor!r}"]
        else:
            out += [flag(name), str(value) if isinstance(value, str) else repr(value)]
    return out


def search_keys() -> list[str]:
    """Every key a search space may use to set the trainer: each Recipe field's name (and
    `FIELD/ENTRY` for one entry of a mapping), and the seed's names for two of them."""
    return [*RECIPE_FIELDS, *(f"{name}/{RECIPE_FIELDS[name].metadata['entry']}"
                              for name in MAPPINGS), *SEED_NAMES]


def is_recipe_key(key: str) -> bool:
    name, slash, entry = key.partition("/")
    if slash:
        return name in MAPPINGS and bool(entry)
    return SEED_NAMES.get(key, key) in RECIPE_FIELDS


def key_kind(key: str) -> type:
    """The type a recipe key takes: int (epochs, batch size...), float, bool or str."""
    name, slash, _ = key.partition("/")
    return float if slash else kind(RECIPE_FIELDS[SEED_NAMES.get(key, key)])


def apply(recipe: Recipe, changes: dict[str, Any]) -> Recipe:
    """`recipe` with search keys set: values converted to the field's type (a whole float
    such as 64.0 from a search is an int), checked, with errors naming the key."""
    updates: dict[str, Any] = {name: dict(getattr(recipe, name)) for name in MAPPINGS}
    for key, value in changes.items():
        name, slash, entry = key.partition("/")
        if slash:
            updates[name][entry] = key_value(key, value)
        else:
            updates[SEED_NAMES.get(key, key)] = key_value(key, value)
    return checked(updated(recipe, updates), "bad hyperparameter")


def key_value(key: str, value: Any) -> Any:
    """A search key's value as its field's type (a whole float such as 64.0 from a search is
    an int), checked against the field's type and range; an error names the key."""
    name, slash, entry = key.partition("/")
    f = RECIPE_FIELDS[name if slash else SEED_NAMES.get(key, key)]
    if not slash:
        value = as_field_type(f, value)
    elif isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    try:
        check_value(f, {entry: value} if slash else value)
    except ValueError as e:
        raise NetdslError(f"'{key}': {e}") from None
    return value
