"""Image classification data in host memory: loaded once as uint8 arrays, decoded and cached.

Sources: torchvision's CIFAR-10/100, MNIST, Fashion-MNIST, SVHN and STL-10 downloads (checked
against their MD5 sums), or an image folder `PATH/{train,test}/<class>/*.png|jpg`, decoded once
and cached as uint8 arrays: 1 channel when every image is grey, else 3.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .wording import Worded

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_CACHE_FORMAT = b"pillow-grey-or-rgb-uint8-v2"  # change it when decoding changes: old caches miss


class DataError(Worded):
    """A dataset that cannot be loaded; the message says what to do about it, naming the
    arguments of `load_images` through a mention (`wording`)."""


def default_data_dir() -> Path:
    """$NETDSL_DATA, else $XDG_CACHE_HOME/netdsl, else ~/.cache/netdsl."""
    if os.environ.get("NETDSL_DATA"):
        return Path(os.environ["NETDSL_DATA"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "netdsl"


@dataclass
class Images:
    """A dataset in host memory: uint8 images (N, H, W, C) and int64 labels."""

    name: str
    classes: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray  # what runs are evaluated on: the test set, or a validation split
    test_y: np.ndarray
    report_x: np.ndarray | None = None  # with a validation split: the test set, reported only
    report_y: np.ndarray | None = None

    def held_out(self, size: int, seed: int = 0) -> "Images":
        """A random `size` of the training images held out as the set runs are evaluated on
        (the validation split), the rest trained on; the test set becomes `report_x/_y`, for
        the final network's test accuracy only."""
        if not 0 < size < len(self.train_y):
            raise DataError(f"{self.name}: a validation split of {size} images leaves none of "
                            f"the {len(self.train_y)} training images to train on"
                            if size > 0 else f"{self.name}: a validation split needs images")
        order = np.random.RandomState(seed).permutation(len(self.train_y))
        valid, train = order[:size], order[size:]
        return Images(f"{self.name}, {size} held out", self.classes, self.train_x[train],
                      self.train_y[train], self.train_x[valid], self.train_y[valid],
                      self.test_x, self.test_y)

    def subset(self, train_limit: int, seed: int = 0) -> "Images":
        """A random `train_limit` of the training images (the test set stays whole)."""
        if not 0 < train_limit < len(self.train_y):
            return self
        keep = np.random.RandomState(seed).permutation(len(self.train_y))[:train_limit]
        return Images(f"{self.name}[{train_limit}]", self.classes, self.train_x[keep],
                      self.train_y[keep], self.test_x, self.test_y, self.report_x, self.report_y)


# torchvision's datasets by name: (class, how it splits: "train" for train=True/False,
# "split" for split="train"/"test")
TORCHVISION = {"cifar10": ("CIFAR10", "train"), "cifar100": ("CIFAR100", "train"),
               "mnist": ("MNIST", "train"), "fashion-mnist": ("FashionMNIST", "train"),
               "svhn": ("SVHN", "split"), "stl10": ("STL10", "split")}


def load_images(dataset: str, data_dir: str | os.PathLike | None = None) -> Images:
    """A torchvision dataset by name (TORCHVISION: downloaded into `data_dir` once) or an
    image-folder path."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if dataset.lower() in TORCHVISION:
        return _torchvision(dataset.lower(), data_dir)
    folder = Path(dataset)
    if folder.is_dir():
        return _image_folder(folder, data_dir)
    raise DataError(lambda given: f"{given('dataset', dataset)}: not one of "
                    f"{', '.join(TORCHVISION)} nor a folder with train/ and test/ subfolders "
                    "of class folders")


def _torchvision(name: str, data_dir: Path) -> Images:
    """Both splits of a torchvision dataset as uint8 (N, H, W, C) arrays and int64 labels.
    torchvision checks the files (MD5 sums where it has them) and downloads what fails."""
    from torchvision import datasets

    class_name, how = TORCHVISION[name]
    kind = getattr(datasets, class_name)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        splits = {}
        for train in (True, False):
            if how == "train":
                split = kind(str(data_dir), train=train, download=True)
            else:
                split = kind(str(data_dir), split="train" if train else "test", download=True)
            images = np.asarray(split.data, dtype=np.uint8)
            if images.ndim == 3:  # MNIST's (N, H, W): one grey channel
                images = images[..., None]
            elif how == "split":  # SVHN's and STL-10's (N, C, H, W)
                images = images.transpose(0, 2, 3, 1)
            labels = np.asarray(split.targets if how == "train" else split.labels,
                                dtype=np.int64)
            splits[train] = (np.ascontiguousarray(images), labels)
        # SVHN names no classes: its labels are the digits
        classes = list(getattr(split, "classes", None) or [str(d) for d in range(10)])
    except (urllib.error.URLError, OSError, RuntimeError, AssertionError, TypeError,
            ValueError) as e:
        if hasattr(kind, "resources"):  # MNIST's format: a file there may be what failed
            _name_unreadable_file(kind, data_dir)
        if not isinstance(e, (urllib.error.URLError, OSError, RuntimeError)):
            raise
        failed = f"cannot get {name} into {data_dir}: {e}. Offline? Copy {_files(kind)} into"
        raise DataError(lambda given: (
            f"{failed} {given('data_dir', str(data_dir))}, or use an image folder: "
            f"{given('dataset', 'PATH')} with PATH/train/<class>/*.png and "
            "PATH/test/<class>/*.png")) from None
    for train, (images, labels) in splits.items():
        where = _split_files(name, kind, data_dir, train)
        if len(labels) != len(images):
            raise DataError(f"{where}: {len(images):,} images but {len(labels):,} labels")
        if len(labels) and not 0 <= labels.min() <= labels.max() < len(classes):
            raise DataError(f"{where}: labels from {labels.min()} to {labels.max()}, but "
                            f"{name} has {len(classes)} classes (0 to {len(classes) - 1})")
    return Images(name, classes, *splits[True], *splits[False])


def _name_unreadable_file(kind, data_dir: Path) -> None:
    """After torchvision failed on an MNIST-format dataset: raise a DataError naming the file
    in `data_dir` that its readers cannot read (another magic number or element type,
    truncated, empty), if one is; return when every file there reads."""
    from torchvision.datasets import mnist

    for filename, _ in kind.resources:
        path = data_dir / kind.__name__ / "raw" / filename.removesuffix(".gz")
        if not path.is_file():
            continue  # torchvision downloads it
        labels = "labels" in path.name
        try:
            (mnist.read_label_file if labels else mnist.read_image_file)(str(path))
        except Exception as e:  # its readers assert, and raise TypeError, ValueError, ...
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"{path}: not an MNIST-format {'label' if labels else 'image'} "
                            f"file ({reason}); delete it to download it again, or copy the "
                            "original there") from None


def _split_files(name: str, kind, data_dir: Path, train: bool) -> str:
    """Where one split of a torchvision dataset lies, for an error: MNIST's two files, or the
    folder."""
    if not hasattr(kind, "resources"):
        return f"{name}'s {'training' if train else 'test'} files in {data_dir}"
    prefix = "train" if train else "t10k"
    return " and ".join(str(data_dir / kind.__name__ / "raw" / filename.removesuffix(".gz"))
                        for filename, _ in kind.resources if filename.startswith(prefix))


def _files(kind) -> str:
    """Where torchvision looks for a dataset's files, in words."""
    if hasattr(kind, "resources"):  # MNIST and Fashion-MNIST
        names = ", ".join(filename.removesuffix(".gz") for filename, _ in kind.resources)
        return f"{kind.__name__}/raw/ ({names}, or their .gz)"
    if hasattr(kind, "split_list"):  # SVHN
        return " and ".join(kind.split_list[split][1] for split in ("train", "test"))
    return f"{kind.filename} (or its extracted {kind.base_folder}/ folder)"


def _listing(folder: Path) -> dict[str, dict[str, list[Path]]]:
    """{split: {class: [files]}}, sorted; errors name what is missing."""
    splits = {}
    for split in ("train", "test"):
        root = folder / split
        if not root.is_dir():
            raise DataError(lambda given: f"{given('dataset', str(folder))}: no {split}/ "
                            f"folder (expected {folder}/{split}/<class>/*.png|jpg)")
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        if not classes:
            raise DataError(lambda given: f"{given('dataset', str(folder))}: {root} has no "
                            "class folders")
        splits[split] = {c: sorted(p for p in (root / c).iterdir()
                                   if p.suffix.lower() in IMAGE_SUFFIXES) for c in classes}
        empty = [c for c, files in splits[split].items() if not files]
        if empty:
            raise DataError(lambda given: f"{given('dataset', str(folder))}: "
                            f"{root / empty[0]} has no .png or .jpg images")
    if list(splits["train"]) != list(splits["test"]):
        raise DataError(lambda given: f"{given('dataset', str(folder))}: train/ and test/ "
                        "have different class folders")
    return splits


def _image_folder(folder: Path, data_dir: Path) -> Images:
    splits = _listing(folder)
    classes = list(splits["train"])
    # The cache is keyed by every file's path, size and modification time: any change decodes
    # again.
    key = hashlib.sha1(_CACHE_FORMAT)
    for by_class in splits.values():
        for paths in by_class.values():
            for path in paths:
                stat = path.stat()
                key.update(f"{path.relative_to(folder)}\0{stat.st_size}\0"
                           f"{stat.st_mtime_ns}\n".encode())
    cache = data_dir / f"{folder.resolve().name}-{key.hexdigest()[:16]}.npz"
    if cache.exists():
        try:
            # Opened here, not by np.load: numpy leaves the file it opened open when the zip
            # inside is damaged (a ResourceWarning), and a damaged cache is what this handles.
            with open(cache, "rb") as file, np.load(file) as arrays:
                return Images(str(folder), classes, arrays["train_x"], arrays["train_y"],
                              arrays["test_x"], arrays["test_y"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            print(f"the cache {cache} does not load ({e}); decoding {folder} again",
                  file=sys.stderr)
    try:  # before decoding for minutes, not after
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        unmade = f"cannot make the cache folder {data_dir}: {e.strerror}"
        raise DataError(lambda given: f"{unmade}; give {given('data_dir')} a folder you can "
                        "write") from None
    _remove_stale_parts(cache)
    files = {split: [path for paths in by_class.values() for path in paths]
             for split, by_class in splits.items()}
    # Both splits decoded as one set, so they share one shape: a grey train/ beside a colour
    # image in test/ is widened too.
    x = _decode_all(files["train"] + files["test"])
    arrays = {"train_x": x[:len(files["train"])], "test_x": x[len(files["train"]):]}
    for split, by_class in splits.items():
        labels = np.repeat(np.arange(len(classes)), [len(p) for p in by_class.values()])
        arrays[f"{split}_y"] = labels.astype(np.int64)
    # A temporary file of this process's own, renamed into place: a cache file is whole or
    # absent, even when two workers decode the same folder at once. Its name carries the
    # process id, so a later run can tell a partial file whose writer died.
    try:
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=f"{cache.stem}.{os.getpid()}.",
                                         suffix=".part", delete=False) as partial:
            np.savez(partial, **arrays)
        os.replace(partial.name, cache)
    except OSError as e:
        raise DataError(f"cannot write the cache {cache}: {e.strerror}") from None
    return Images(str(folder), classes, arrays["train_x"], arrays["train_y"], arrays["test_x"],
                  arrays["test_y"])


def _remove_stale_parts(cache: Path) -> None:
    """Delete partial cache files left by decodes whose process is gone (killed mid-write)."""
    for partial in cache.parent.glob(f"{cache.stem}.*.part"):
        pid = partial.name[len(cache.stem) + 1:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True


def _decode(path: Path) -> np.ndarray:
    """(H, W, 1) uint8 for a grey image, (H, W, 3) for any other; alpha is dropped."""
    from PIL import Image, UnidentifiedImageError  # torchvision's own dependency

    try:
        with Image.open(path) as image:
            bands = [band for band in image.getbands() if band != "A"]
            if bands == ["I"]:
                # A 16-bit grey PNG: kept as its high byte, as Pillow reads 16-bit colour PNGs;
                # convert("L") would clip every value above 255, a white image.
                return (np.asarray(image) >> 8).astype(np.uint8)[..., None]
            if len(bands) == 1 and bands != ["P"]:  # L, 1 (as 0 or 255), F; not a palette's colours
                return np.asarray(image.convert("L"))[..., None]
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"cannot decode {path}: {e}") from None


def _decode_all(files: list[Path]) -> np.ndarray:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL decodes without the GIL
        images = list(pool.map(_decode, files, chunksize=256))
    if len({image.shape[2] for image in images}) > 1:  # grey among colour: one shape, colour
        images = [np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image for image in images]
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        odd = next(f for f, image in zip(files, images) if image.shape != images[0].shape)
        raise DataError(f"images differ in size: {files[0]} is {images[0].shape[:2]}, "
                        f"{odd} is not; all images must have one size")
    return np.stack(images)
