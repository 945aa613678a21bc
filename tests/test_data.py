"""Image folders of grey images load as 1-channel data, and train (no network, no downloads)."""
import numpy as np
import pytest
import torch
from torch import nn

import netdsl_runtime as runtime
from netdsl_runtime import images as runtime_images

SIZE = 12


def write_grey_folder(root, per_class=(24, 8)):
    """Two classes of 12x12 mode-L PNGs: a dark and a light class, plus noise."""
    from PIL import Image

    rng = np.random.RandomState(0)
    for split, n in zip(("train", "test"), per_class):
        for c, name in enumerate(("dark", "light")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(60 + 120 * c + rng.normal(0, 20, (SIZE, SIZE)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8), mode="L").save(
                    root / split / name / f"{i}.png")
    return root


@pytest.fixture
def grey_folder(tmp_path):
    return write_grey_folder(tmp_path / "grey")


def test_grey_folder_loads_as_one_channel(grey_folder, tmp_path):
    images = runtime.load_images(str(grey_folder), tmp_path / "cache")
    assert images.train_x.shape == (48, SIZE, SIZE, 1)
    assert images.test_x.shape == (16, SIZE, SIZE, 1)
    assert images.train_x.dtype == np.uint8
    data = runtime.DeviceData(images, "cpu")
    assert data.image_shape == (1, SIZE, SIZE)
    assert data.mean.shape == data.std.shape == (1,)
    batches = list(data.train_batches(8, torch.Generator().manual_seed(0), translate=4, cutout=4,
                                      flips=None))
    assert len(batches) == 6
    for x, y in batches:
        assert x.shape == (8, 1, SIZE, SIZE) and x.dtype == torch.float32 and y.shape == (8,)
        assert torch.isfinite(x).all()
    x, _ = next(data.eval_batches(16))
    assert x.shape == (16, 1, SIZE, SIZE)
    # Normalised with the training set's own statistics: about zero mean, unit std.
    train = data.normalise(data.eval_x.new_tensor(images.train_x).permute(0, 3, 1, 2))
    assert train.mean().item() == pytest.approx(0, abs=1e-4)
    assert train.std().item() == pytest.approx(1, abs=1e-2)


def test_colour_image_among_grey_widens_the_set(grey_folder, tmp_path):
    from PIL import Image

    colour = np.zeros((SIZE, SIZE, 3), np.uint8)
    colour[..., 0] = 255
    Image.fromarray(colour, mode="RGB").save(grey_folder / "test" / "dark" / "rgb.png")
    images = runtime.load_images(str(grey_folder), tmp_path / "cache")
    # One colour image in test/ widens train/ too: both splits share one shape.
    assert images.train_x.shape == (48, SIZE, SIZE, 3)
    assert images.test_x.shape == (17, SIZE, SIZE, 3)
    grey = images.train_x
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    red = images.test_x[8]  # test/dark/ sorts 0.png..7.png, then rgb.png
    assert red[..., 0].min() == 255 and red[..., 1:].max() == 0


def test_grey_images_of_different_sizes_are_named(grey_folder, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((SIZE + 1, SIZE + 1), np.uint8), mode="L").save(
        grey_folder / "train" / "light" / "big.png")
    with pytest.raises(runtime.DataError, match="big.png"):
        runtime.load_images(str(grey_folder), tmp_path / "cache")


@pytest.mark.parametrize("mode, channels", [
    ("L", 1), ("1", 1), ("LA", 1), ("I;16", 1), ("P", 3), ("RGBA", 3), ("RGB", 3)])
def test_modes_decode_to_one_or_three_channels(tmp_path, mode, channels):
    from PIL import Image

    grey = np.arange(SIZE * SIZE, dtype=np.uint8).reshape(SIZE, SIZE)
    image = Image.fromarray(grey, mode="L").convert(mode)
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)  # 16-bit: the byte, twice
    image.save(tmp_path / "image.png")
    decoded = runtime_images._decode(tmp_path / "image.png")
    assert decoded.shape == (SIZE, SIZE, channels) and decoded.dtype == np.uint8
    if mode not in ("1", "P"):  # "1" is thresholded, a palette image's colours are quantised
        assert (decoded == grey[..., None]).all()


def test_second_load_reads_the_cache(grey_folder, tmp_path, monkeypatch):
    first = runtime.load_images(str(grey_folder), tmp_path / "cache")

    def no_decoding(path):
        raise AssertionError("decoded again")
    monkeypatch.setattr(runtime_images, "_decode", no_decoding)
    again = runtime.load_images(str(grey_folder), tmp_path / "cache")
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert np.array_equal(getattr(again, name), getattr(first, name))
    assert again.train_x.shape[-1] == 1


def test_cache_of_an_older_format_misses(grey_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_images, "_CACHE_FORMAT", b"an older decoding")
    runtime.load_images(str(grey_folder), tmp_path / "cache")
    monkeypatch.undo()
    runtime.load_images(str(grey_folder), tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_a_network_for_grey_images_trains(grey_folder, tmp_path):
    data = runtime.DeviceData(runtime.load_images(str(grey_folder), tmp_path / "cache"), "cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
                          nn.Flatten(), nn.Linear(4, 2))
    recipe = runtime.Recipe(epochs=1, peak_epoch=1, batch_size=8, cutout=0, precision="fp32")
    result = runtime.train(model, data, recipe, log=None)
    assert result.status == "finished"
    assert len(result.epochs) == 1
