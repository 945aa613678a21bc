"""Image classification data on the training device: kept whole as uint8, normalised and
augmented there a batch at a time with tensor ops (no per-sample Python). Loading and decoding
are images.py's."""
from __future__ import annotations

import copy
from typing import Iterator

import numpy as np
import torch

from .images import DataError, Images


def _channel_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images (N, H, W, C), in [0, 1] units. Exact, from a
    256-bin histogram per channel: no float copy of the whole set."""
    values = np.arange(256) / 255
    counts = np.stack([np.bincount(x[..., c].ravel(), minlength=256) for c in range(x.shape[-1])])
    mean = counts @ values / counts.sum(1)
    std = np.sqrt(counts @ values ** 2 / counts.sum(1) - mean ** 2)
    return mean, std


def _reflect_index(size: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices that reflect-pad a dimension of `size` by `pad` (edge not repeated)."""
    index = torch.arange(-pad, size + pad, device=device).abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


class DeviceData:
    """A dataset resident on `device` as uint8, with its per-channel mean and std (of the
    training images, in [0, 1] units) for normalisation on the device."""

    def __init__(self, images: Images, device: torch.device | str):
        self.device = torch.device(device)
        self.name = images.name
        self.classes = images.classes
        to_nchw = lambda x: torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
        train = to_nchw(images.train_x).to(self.device)
        mean, std = _channel_statistics(images.train_x)
        if not std.all():  # normalising would divide by zero: every value infinite or NaN
            channel = int(np.flatnonzero(std == 0)[0])
            raise DataError(f"{images.name}: channel {channel} of every training image has the "
                            f"one value {round(mean[channel] * 255)}; there is nothing to learn "
                            "from (are the images blank?)")
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device)
        self._mean_255 = (self.mean * 255)[:, None, None]  # in uint8 units, for normalise
        self._inverse_std_255 = 1 / (self.std * 255)[:, None, None]
        self.train_x = train
        self._padded: tuple[int, torch.Tensor] | None = None  # (pixels, images) of the last pad
        self.train_y = torch.from_numpy(images.train_y).to(self.device)
        # What runs are evaluated on: the validation split where there is one (the test set then
        # waits in `report`, whose evaluated images it is, for the final network), else the
        # test set.
        self.eval_x = to_nchw(images.test_x).to(self.device)
        self.eval_y = torch.from_numpy(images.test_y).to(self.device)
        self.image_shape = tuple(self.eval_x.shape[1:])
        self.report: DeviceData | None = None
        if images.report_x is not None:
            self.report = copy.copy(self)
            self.report.eval_x = to_nchw(images.report_x).to(self.device)
            self.report.eval_y = torch.from_numpy(images.report_y).to(self.device)

    @property
    def train_size(self) -> int:
        return len(self.train_y)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32, zero mean and unit std per channel, channels_last."""
        x = x.contiguous(memory_format=torch.channels_last).float()
        return x.sub_(self._mean_255).mul_(self._inverse_std_255)

    def padded(self, pixels: int) -> torch.Tensor:
        """The training images reflect-padded by `pixels` on each side (edges not repeated),
        kept for the next call. By indexing: torch's reflect pad does not take uint8, and a
        float copy of the set is 4x larger."""
        if self._padded is None or self._padded[0] != pixels:
            self._padded = None  # free the old copy before making the new one
            height, width = self.image_shape[1:]
            if pixels >= min(height, width):
                raise ValueError(f"translate {pixels} is not smaller than the {height}x{width} "
                                 "images (reflection needs a pixel beyond the shift)")
            rows = _reflect_index(height, pixels, self.device)
            cols = _reflect_index(width, pixels, self.device)
            self._padded = pixels, self.train_x[:, :, rows][:, :, :, cols]
        return self._padded[1]

    def train_batches(self, batch_size: int, generator: torch.Generator, *, translate: int,
                      cutout: int, flips: torch.Tensor | None
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of augmented batches in random order: each image shifted by up to
        `translate` pixels each way (a random window of the reflect-padded image), mirrored
        where `flips` (one bool per training image) says so, or with probability 1/2 when
        `flips` is None, and a `cutout` x `cutout` square set to zero (the mean, after
        normalisation) when cutout > 0. The last partial batch is dropped."""
        n, (_, height, width) = self.train_size, self.image_shape
        padded = self.padded(translate)
        order = torch.randperm(n, device=self.device, generator=generator)
        rows = torch.arange(height, device=self.device)
        cols = torch.arange(width, device=self.device)
        for start in range(0, n - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            b = len(index)
            dy, dx = torch.randint(0, 2 * translate + 1, (2, b), device=self.device,
                                   generator=generator)
            if flips is None:
                flip = torch.randint(0, 2, (b,), device=self.device, generator=generator).bool()
            else:
                flip = flips[index]
            # A view of every HxW window of each padded image (no copy), indexed by each
            # image's offset: image i becomes rows dy[i]..dy[i]+H, cols dx[i]..dx[i]+W.
            windows = padded[index].unfold(2, height, 1).unfold(3, width, 1)
            x = windows[torch.arange(b, device=self.device), :, dy, dx]
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            x = self.normalise(x)
            if cutout:
                top = torch.randint(0, height - cutout + 1, (b,), device=self.device,
                                    generator=generator)
                left = torch.randint(0, width - cutout + 1, (b,), device=self.device,
                                     generator=generator)
                inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + cutout)
                inside_cols = (cols >= left[:, None]) & (cols < left[:, None] + cutout)
                x = x.masked_fill((inside_rows[:, :, None] & inside_cols[:, None, :])[:, None], 0)
            yield x, self.train_y[index]

    def evaluated_as_training(self) -> DeviceData:
        """The evaluated images (a validation split) as the training set of a copy, normalised
        by this set's statistics: the held-out half a differentiable search trains its
        architecture on."""
        held_out = copy.copy(self)
        held_out.train_x, held_out.train_y, held_out._padded = self.eval_x, self.eval_y, None
        return held_out

    def train_images(self, n: int) -> torch.Tensor:
        """The first `n` training images as the network sees them, without augmentation."""
        return self.normalise(self.train_x[:n])

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The evaluated images (`eval_x`) normalised, and their labels, a batch at a time."""
        for start in range(0, len(self.eval_y), batch_size):
            yield (self.normalise(self.eval_x[start:start + batch_size]),
                   self.eval_y[start:start + batch_size])
