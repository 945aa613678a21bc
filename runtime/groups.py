"""The optimizers' parameter groups: each parameter's path, its learning-rate scale and
weight-decay limit by path prefix and by kind, and the check that every entry of a recipe
matches a parameter of the model."""
from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from .muon import Muon
from .recipe import Recipe
from .wording import WordedValueError


def parameter_path(model: nn.Module, name: str) -> str:
    """The node path of parameter `name`: `model.path_of(name)` for models that name their
    nodes by path (netdsl's), else the dotted name with `.` as `/`."""
    path_of = getattr(model, "path_of", None)
    return path_of(name) if callable(path_of) else name.replace(".", "/")


def kind_names(module: nn.Module, parameter: str) -> list[str]:
    """The names `kind_lr_scale` knows a parameter by: CLASS.PARAMETER for its module's class
    and every class that derives from (`BatchNorm2d.bias` matches netdsl's BatchNorm)."""
    return [f"{cls.__name__}.{parameter}" for cls in type(module).__mro__
            if issubclass(cls, nn.Module) and cls is not nn.Module]


def _is_under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or below it (`layer3` takes `layer3/...`, not `layer30/...`)."""
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _longest_prefix(path: str, prefixes) -> str | None:
    """The longest of `prefixes` that `path` is under, or None."""
    hits = [p for p in prefixes if _is_under(path, p)]
    return max(hits, key=len) if hits else None


def _named_parameters(model: nn.Module) -> Iterator[tuple[str, list[str], nn.Parameter]]:
    """(node path, kind names, parameter) of every parameter of `model`."""
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            path = parameter_path(model, f"{module_name}.{name}" if module_name else name)
            yield path, kind_names(module, name), param


def unmatched_entries(model: nn.Module, recipe: Recipe) -> dict[str, list[str]]:
    """The entries of the recipe's mappings (lr_scale, kind_lr_scale, train_epochs) that match
    no parameter of `model`, by field; fields whose entries all match are left out."""
    paths, kinds = set(), set()
    for path, kind_list, _ in _named_parameters(model):
        paths.add(path)
        kinds.update(kind_list)
    under = lambda prefix: any(_is_under(path, prefix) for path in paths)
    unmatched = {"lr_scale": [p for p in recipe.lr_scale if not under(p)],
                 "kind_lr_scale": [k for k in recipe.kind_lr_scale if k not in kinds],
                 "train_epochs": [p for p in recipe.train_epochs if not under(p)]}
    return {name: entries for name, entries in unmatched.items() if entries}


def check_fits(model: nn.Module, recipe: Recipe) -> None:
    """Raise ValueError when `recipe` cannot train `model`: Muon without convolution filters to
    take, or an entry of a mapping that matches no parameter (a typing mistake)."""
    if recipe.optimizer == "muon" and not any(
            param.requires_grad and param.ndim == 4 for param in model.parameters()):
        raise WordedValueError(lambda given: "optimizer muon: the network has no trained "
                               "convolution filters (4-D parameters) for Muon; use "
                               f"{given('optimizer', 'sgd')}")
    for name, entries in unmatched_entries(model, recipe).items():
        what = "of kind" if name == "kind_lr_scale" else "under"
        raise ValueError(f"{name}: no parameter {what} '{entries[0]}'")


def _scaled_parameters(model: nn.Module, recipe: Recipe) -> list[tuple[nn.Parameter, float]]:
    """Each parameter with its learning-rate factor: that of the longest `lr_scale` prefix of
    its path times its `kind_lr_scale`."""
    out = []
    for path, kind_list, param in _named_parameters(model):
        prefix = _longest_prefix(path, recipe.lr_scale)
        kinds = [k for k in kind_list if k in recipe.kind_lr_scale]
        scale = recipe.lr_scale[prefix] if prefix else 1.0
        out.append((param, scale * (recipe.kind_lr_scale[kinds[0]] if kinds else 1.0)))
    return out


def limited_parameters(model: nn.Module, recipe: Recipe) -> list[tuple[nn.Parameter, float]]:
    """The trained parameters `train_epochs` stops, each with the epochs it trains for."""
    out = []
    for path, _, param in _named_parameters(model):
        prefix = _longest_prefix(path, recipe.train_epochs)
        if prefix is not None and param.requires_grad:  # one the network keeps fixed stays
            out.append((param, recipe.train_epochs[prefix]))
    return out


def optimizers(model: nn.Module, recipe: Recipe) -> list[torch.optim.Optimizer]:
    """The optimizers of a run: SGD, and Muon for the convolution filters with `--optimizer
    muon`. Each group's `peak` is its learning rate per step at the peak of the schedule (the
    trainer sets `lr` to a fraction of it every step). SGD's is for the mean loss of a batch;
    with `decoupled`, peak_lr and weight_decay are airbench's: per 1024 examples of summed loss
    over 1024 * (1 + 1/(1 - momentum)), and a group at k times the rate gets 1/k of the L2
    coefficient, so that its decay per step does not change with the rate."""
    scaled = [(p, scale) for p, scale in _scaled_parameters(model, recipe) if p.requires_grad]
    muon = recipe.optimizer == "muon"
    filters = [(p, scale) for p, scale in scaled if muon and p.ndim == 4]
    peak_lr, decay = recipe.peak_lr, lambda scale: recipe.weight_decay
    if recipe.decoupled:
        peak_lr = recipe.peak_lr * recipe.batch_size / (1024 * (1 + 1 / (1 - recipe.momentum)))
        decay = lambda scale: (recipe.weight_decay / (recipe.peak_lr * scale)
                               if recipe.peak_lr * scale else 0.0)

    def groups(pairs: list[tuple[nn.Parameter, float]], peak: float, sgd: bool) -> list[dict]:
        by_scale: dict[float, list[nn.Parameter]] = {}
        for param, scale in pairs:
            by_scale.setdefault(scale, []).append(param)
        return [{"params": params, "peak": peak * scale, **({"weight_decay": decay(scale)}
                                                             if sgd else {})}
                for scale, params in by_scale.items()]

    in_muon = {id(p) for p, _ in filters}
    rest = [(p, scale) for p, scale in scaled if id(p) not in in_muon]
    optimizers: list[torch.optim.Optimizer] = []
    if rest:
        optimizers.append(torch.optim.SGD(groups(rest, peak_lr, sgd=True), lr=0.0,
                                          momentum=recipe.momentum,
                                          nesterov=recipe.momentum > 0))
    if filters:
        optimizers.append(Muon(groups(filters, recipe.muon_lr, sgd=False), lr=0.0,
                               momentum=recipe.muon_momentum,
                               nesterov=recipe.muon_momentum > 0))
    return optimizers
