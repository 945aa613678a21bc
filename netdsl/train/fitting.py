"""Bound network + data + recipe -> a trained network: the one place netdsl trains.

`netdsl run`, `netdsl search`, `netdsl trial` and `netdsl.search.fit_point` all go through here:
`load_data` puts a dataset on the device once, `bind_to_data` binds a family for its images
and classes, `fit` builds the module, seeds it, loads initial weights and trains it with the
shared trainer (`runtime`), and gives back one `Fitted`, however the training was started.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from netdsl_runtime.wording import WordedValueError

from ..errors import ArgumentError, NetdslError
from ..graph import format_shape
from ..language import Bound, Family
from ..language.choices import Chooser, at_defaults
from ..module.memory import check_memory
from .wanted import DataWanted

if TYPE_CHECKING:
    import netdsl_runtime as runtime
    from torch import nn


@dataclass
class Fitted:
    """A network trained: what it was (`bound`, `recipe`), what the trainer recorded
    (`result`: status, epochs, precision), and the trained module."""

    bound: Bound
    recipe: "runtime.Recipe"
    result: "runtime.Result"
    model: "nn.Module | None"  # None: interrupted before it was built
    reused: dict[str, str] | None = None  # path -> copied/sliced/kept, when started from weights
    # With a validation split: the trained network's accuracy on the test set, which nothing
    # was chosen on (with test-time augmentation when the recipe has it), and its seconds.
    test_accuracy: float | None = None
    test_seconds: float = 0.0

    @property
    def status(self) -> str:
        """finished, stopped (by should_stop), diverged (loss not finite) or interrupted."""
        return self.result.status

    @property
    def accuracy(self) -> float | None:
        """Validation accuracy after the last epoch run."""
        return self.result.valid_acc

    @property
    def curve(self) -> list[float | None]:
        """Validation accuracy per epoch (None where an epoch was not evaluated)."""
        return [e.valid_acc for e in self.result.epochs]

    def measure_test(self, data: "runtime.DeviceData") -> float:
        """The trained network's accuracy on `data`'s test set (held back by a validation
        split), with the recipe's test-time augmentation; kept in `test_accuracy` and
        `test_seconds`."""
        import netdsl_runtime as runtime

        start = runtime.now(data.device)
        _, self.test_accuracy = runtime.validate(self.model, data.report, self.recipe,
                                                 runtime.AUTOCAST_DTYPES[self.result.precision],
                                                 tta=self.recipe.tta)
        self.test_seconds = runtime.now(data.device) - start
        return self.test_accuracy

    def to_dict(self) -> dict[str, Any]:
        """The record of this training: the network as text, its values, the recipe as set, and
        the trainer's per-epoch record."""
        return {"dsl": self.bound.text, "values": self.bound.parameters,
                "fingerprint": self.bound.fingerprint, "flops": self.bound.flops,
                "weight_count": self.bound.weight_count, "test_acc": self.test_accuracy,
                "test_time": self.test_seconds,
                "hyperparameters": self.recipe.to_dict(), **self.result.to_dict()}


def load_data(wanted: DataWanted, device, seed: int = 0,
              log: Callable[[str], None] | None = print) -> "runtime.DeviceData":
    """The data `wanted` loaded once and put on `device`; `seed` draws the training images
    kept and those held out (the test set then kept for the report)."""
    import netdsl_runtime as runtime

    try:
        images = runtime.load_images(wanted.dataset, wanted.data_dir)
        if wanted.train_limit:
            images = images.subset(wanted.train_limit, seed=seed)
        held_out = wanted.valid_split or round(wanted.held_out * len(images.train_y))
        if held_out:
            images = images.held_out(held_out, seed=seed)
        data = runtime.DeviceData(images, device)
    except runtime.DataError as e:  # naming load_images's arguments, as ArgumentError does
        raise ArgumentError(e.words) from None
    if log:
        evaluated = (f"{len(images.test_y):,} validation (held out, seed {seed}) and "
                     f"{len(images.report_y):,} test" if held_out
                     else f"{len(images.test_y):,} test")
        log(f"{images.name}: {len(images.train_y):,} training, {evaluated} images of "
            f"{format_shape(data.image_shape)}, {len(images.classes)} classes, on {device}")
    return data


def bind_to_data(family: Family, data: "runtime.DeviceData",
                 values: dict[str, Any] | None = None, chooser: Chooser = at_defaults,
                 ignore_unknown: bool = False) -> Bound:
    """`family` bound for `data`: checked against its images' shape, its choices not in
    `values` as `chooser` picks them; a family declaring `classes` gets the dataset's class
    count unless `values` binds it. `ignore_unknown`: a value for a choice point this
    network does not meet is no error (a search's --set of a point that only some draws
    reach, checked once before the search). (Outputs that do not fit the classes are the
    trainer's error, before any step: it checks any model.)"""
    return family.bind(with_classes(family, data, values), input_shape=data.image_shape,
                       chooser=chooser, ignore_unknown=ignore_unknown)


def with_classes(family: Family, data: "runtime.DeviceData",
                 values: dict[str, Any] | None) -> dict[str, Any]:
    """`values`, and the dataset's class count for a family declaring `classes` that they do
    not bind."""
    values = dict(values or {})
    if "classes" in family.parameters and "classes" not in values:
        values["classes"] = len(data.classes)
    return values


def early_recipe(family: Family, values: dict[str, Any], recipe: "runtime.Recipe",
                 optional: frozenset = frozenset(),
                 log: Callable[[str], None] | None = print) -> "runtime.Recipe":
    """Before the data loads: `values` checked against `family`, and `recipe` made to fit its
    network (see `applicable_recipe`) and checked against it (`runtime.check_fits`), bound for
    CIFAR-sized images and built on torch's meta device (no weights). A network's parts do not
    depend on the image size; one that does not bind at that size is checked when the data's
    size is known."""
    import netdsl_runtime as runtime
    import torch

    try:
        bound = family.bind(values)
    except NetdslError:
        family.check_values(values)  # a wrong value fails now; a wrong size waits for the data
        return recipe
    with torch.device("meta"):
        model = bound.module()
    recipe = applicable_recipe(model, recipe, optional, log)
    try:
        runtime.check_fits(model, recipe)
    except WordedValueError as e:  # naming the recipe's fields, as ArgumentError does
        raise ArgumentError(e.words) from None
    except ValueError as e:
        raise NetdslError(str(e)) from None
    return recipe


def applicable_recipe(model: "nn.Module", recipe: "runtime.Recipe", optional: frozenset,
                      log: Callable[[str], None] | None = None) -> "runtime.Recipe":
    """`recipe` less the `optional` entries of its mappings ((field, entry) pairs: a preset's)
    that match nothing in `model`, which `log` is told. What else cannot train the model (an
    entry of the user's that matches nothing, Muon without filters) is `runtime.check_fits`'s
    to say: the trainer asks it before the first step."""
    import netdsl_runtime as runtime

    unmatched = runtime.unmatched_entries(model, recipe)
    dropped = {(name, entry) for name, entries in unmatched.items() for entry in entries
               if (name, entry) in optional}
    if dropped:
        kept: dict[str, Any] = {name: {entry: value for entry, value in
                                       getattr(recipe, name).items()
                                       if (name, entry) not in dropped}
                                for name, _ in dropped}  # each mapping less what it drops
        recipe = replace(recipe, **kept)
        if log:
            log("not applied (the network has nothing they name): " + ", ".join(
                f"{name} {entry}" for name, entry in sorted(dropped)))
    return recipe


def fit(bound: Bound, data: "runtime.DeviceData", recipe: "runtime.Recipe", *,
        optional: frozenset = frozenset(), init: dict[str, Any] | None = None,
        log: Callable[[str], None] | None = print,
        should_stop: Callable[["runtime.Epoch"], bool] | None = None,
        progress: bool = False, evaluate_each_epoch: bool = True,
        report_test: bool = True) -> Fitted:
    """Build `bound`'s module with weights seeded by `recipe.seed`, start it from `init`
    (path-keyed weights of this or a wider network, see `transfer_weights`) when given, and
    train it on `data` with `recipe`, less the `optional` entries that match nothing in it
    (see `applicable_recipe`; `early_recipe` said which). `log` gets the seed's table;
    `should_stop` is asked after each evaluated epoch; `progress` shows a live line on stderr
    during each epoch; `evaluate_each_epoch` False evaluates only what the result needs.
    With a validation split the trained network's test accuracy is measured too, unless
    `report_test` is False (a search measures only the network it chooses).
    An invalid setting or running out of memory is a NetdslError; a loss that stops being
    finite is status "diverged"; Ctrl-C, from the module's build on, status "interrupted"."""
    import netdsl_runtime as runtime

    from ..module.network import transfer_weights

    check_memory(bound, recipe.batch_size, data.device)
    try:  # a large network takes seconds to build: Ctrl-C then interrupts the run too
        model = bound.module(seed=recipe.seed)  # the run's seed: its weights, then its training
        recipe = applicable_recipe(model, recipe, optional)
        reused = None
        if init is not None:
            from ..supernet.file import FORMAT, weights_for

            reused = transfer_weights(weights_for(init, bound, model)
                                      if init.get("format") == FORMAT
                                      else init, model)
            if log:
                log("initial weights: " + ", ".join(
                    f"{sum(v == kind for v in reused.values())} {kind}"
                    for kind in ("copied", "sliced", "kept")))
    except KeyboardInterrupt:
        return Fitted(bound, recipe, runtime.Result(
            "interrupted", [], message="interrupted while the network was built, before its "
            "first epoch"), model=None)
    result = train_model(model, data, recipe, log=log, should_stop=should_stop,
                         progress=progress, evaluate_each_epoch=evaluate_each_epoch)
    fitted = Fitted(bound, recipe, result, model, reused)
    if report_test and data.report is not None and result.status in ("finished", "stopped"):
        fitted.measure_test(data)
        if log:
            log(f"test acc {fitted.test_accuracy:.4f} (the test set; the table's valid acc is "
                "the held-out validation split)")
    return fitted


def train_model(model: "nn.Module", data: "runtime.DeviceData", recipe: "runtime.Recipe",
                **options) -> "runtime.Result":
    """`runtime.train` (`options` are its keywords), a setting it refuses or memory running out
    a NetdslError: the one place netdsl trains a module."""
    import netdsl_runtime as runtime

    try:
        return runtime.train(model, data, recipe, **options)
    except (WordedValueError, runtime.OutOfMemory) as e:
        raise ArgumentError(e.words) from None
    except ValueError as e:
        raise NetdslError(str(e)) from None
