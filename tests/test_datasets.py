"""torchvision's datasets by name, from small files in each format that the tests write
themselves (no download): MNIST and Fashion-MNIST (IDX), SVHN (.mat), STL-10 (binary). The
network's input shape follows the data: 1x28x28, 3x32x32, 3x96x96."""
import json
import struct

import numpy as np
import pytest
import torchvision

import netdsl_runtime as runtime
from conftest import netdsl_cli

RNG = np.random.RandomState(0)


def write_idx(path, array):
    """IDX, MNIST's format: a magic number naming uint8 and the dimensions, then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_mnist(root, folder, n=(60, 20)):
    """Class c is an image of brightness 25c, plus noise: learnable, and checkable."""
    for prefix, count in zip(("train", "t10k"), n):
        labels = RNG.randint(0, 10, count)
        images = np.clip(labels[:, None, None] * 25 + RNG.randint(0, 20, (count, 28, 28)), 0, 255)
        write_idx(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", labels)


def make_svhn(root, n=(40, 20)):
    import scipy.io

    for split, count in zip(("train", "test"), n):
        labels = RNG.randint(1, 11, count)  # SVHN writes the digit 0 as 10
        images = RNG.randint(0, 256, (32, 32, 3, count)).astype(np.uint8)  # (H, W, C, N)
        images[0, 0, 0] = labels * 20  # a pixel that says the label
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": images, "y": labels[:, None]})


def make_stl10(root, n=(20, 10)):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    for split, count in zip(("train", "test"), n):
        labels = RNG.randint(1, 11, count)  # 1-10 on disk
        images = RNG.randint(0, 256, (count, 3, 96, 96)).astype(np.uint8)
        images[:, 0, 0, 0] = labels * 20
        # stored column-major: each channel transposed
        images.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
        labels.astype(np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")


@pytest.fixture
def no_md5(monkeypatch):
    """torchvision checks SVHN's and STL-10's files against the real ones' MD5 sums: the small
    files here pass only with that check answered yes."""
    for module in (torchvision.datasets.utils, torchvision.datasets.svhn,
                   torchvision.datasets.stl10):
        monkeypatch.setattr(module, "check_integrity", lambda *args, **kwargs: True)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_and_fashion_mnist_load_as_one_grey_channel(tmp_path, name, folder):
    make_mnist(tmp_path, folder)
    images = runtime.load_images(name, tmp_path)
    assert images.train_x.shape == (60, 28, 28, 1) and images.test_x.shape == (20, 28, 28, 1)
    assert images.train_x.dtype == np.uint8 and len(images.classes) == 10
    # brightness follows the label, as written
    assert np.all(images.train_x.mean((1, 2, 3)) // 25 == images.train_y)


def test_svhn_loads_with_zero_as_the_digit_zero(tmp_path, no_md5):
    make_svhn(tmp_path)
    images = runtime.load_images("svhn", tmp_path)
    assert images.train_x.shape == (40, 32, 32, 3) and images.test_x.shape == (20, 32, 32, 3)
    assert images.classes == [str(d) for d in range(10)]
    assert np.array_equal(images.train_x[:, 0, 0, 0] // 20 % 10, images.train_y)


def test_stl10_loads_96_pixel_images(tmp_path, no_md5):
    make_stl10(tmp_path)
    images = runtime.load_images("stl10", tmp_path)
    assert images.train_x.shape == (20, 96, 96, 3) and images.test_x.shape == (10, 96, 96, 3)
    assert images.classes == [f"class{i}" for i in range(10)]
    assert np.array_equal(images.train_x[:, 0, 0, 0] // 20, images.train_y + 1)


def test_the_network_takes_the_shape_of_the_data(tmp_path):
    """A family written for any image trains on MNIST by name: 1 channel, 28x28."""
    make_mnist(tmp_path, "MNIST", n=(128, 32))
    record = tmp_path / "run.json"
    done = netdsl_cli("run", "-e", "a(8, pool) -> b(16, pool) -> head(10)", "--dataset",
                      "mnist", "--data-dir", str(tmp_path), "--epochs", "1", "--batch-size", "32",
                      "--json", str(record), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(record.read_text())
    assert report["runs"][0]["status"] == "finished"
    assert "1x28x28" in done.stdout and "finished: valid acc" in done.stdout
    assert "epoch" not in done.stdout  # --quiet: no table


def test_offline_the_error_says_which_files_to_put_where(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no route to host")
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    monkeypatch.setattr(torchvision.datasets.svhn, "download_url", offline)
    with pytest.raises(runtime.DataError) as error:
        runtime.load_images("mnist", tmp_path)
    assert "MNIST/raw/ (train-images-idx3-ubyte" in str(error.value)
    assert str(tmp_path) in str(error.value)
    with pytest.raises(runtime.DataError, match="train_32x32.mat and test_32x32.mat"):
        runtime.load_images("svhn", tmp_path)
