"""Tests of the dataset loaders, the stratified split and the download code.

Downloads use file:// mirrors in the test's own folder, never the network. The
real-MNIST tests run only when MICROGLIA_TEST_DATA names a folder that contains
mnist/ (or fashion-mnist/) with the official files.
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from microglia.data import (
    DATASET_NAMES,
    DataError,
    Dataset,
    Split,
    load_arrays,
    load_dataset,
)
from microglia.data import download as download_module
from microglia.data.datasets import load_idx_dataset
from microglia.data.download import IDX_FILE_NAMES, md5_hex
from microglia.data.splits import stratified_split

TRAIN_COUNT = 50
TEST_COUNT = 20
ROWS, COLUMNS = 4, 3


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch):
    """Keep the caller's data and mirror settings out of every test."""
    monkeypatch.delenv("MICROGLIA_DATA", raising=False)
    monkeypatch.delenv("MICROGLIA_MIRROR", raising=False)


def idx_gz_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as a gzip-compressed IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def fake_idx_files(seed: int = 0) -> dict[str, bytes]:
    """Build small MNIST-like files (50 train, 20 test images of 4x3 pixels), keyed by file name."""
    rng = np.random.default_rng(seed)
    train_images = rng.integers(0, 256, size=(TRAIN_COUNT, ROWS, COLUMNS), dtype=np.uint8)
    train_images[0, 0, 0] = 255
    train_images[0, 0, 1] = 0
    test_images = rng.integers(0, 256, size=(TEST_COUNT, ROWS, COLUMNS), dtype=np.uint8)
    return {
        "train-images-idx3-ubyte.gz": idx_gz_bytes(train_images),
        "train-labels-idx1-ubyte.gz": idx_gz_bytes(np.arange(TRAIN_COUNT) % 10),
        "t10k-images-idx3-ubyte.gz": idx_gz_bytes(test_images),
        "t10k-labels-idx1-ubyte.gz": idx_gz_bytes(np.arange(TEST_COUNT) % 10),
    }


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def fake_files() -> dict[str, bytes]:
    return fake_idx_files()


@pytest.fixture
def patched_md5(monkeypatch, fake_files) -> dict[str, str]:
    """Replace the official mnist checksums with those of the fake files."""
    checksums = {name: md5_hex(data) for name, data in fake_files.items()}
    monkeypatch.setitem(download_module.OFFICIAL_MD5, "mnist", checksums)
    return checksums


# Stratified split


def test_stratified_split_sizes_and_cover():
    labels = np.repeat(np.arange(5), [30, 20, 11, 7, 1])

    remaining, held_out = stratified_split(labels, 0.2, seed=3)

    assert len(held_out) == math.ceil(0.2 * len(labels))
    assert len(remaining) + len(held_out) == len(labels)
    np.testing.assert_array_equal(np.sort(np.concatenate([remaining, held_out])), np.arange(len(labels)))
    for label, total in enumerate([30, 20, 11, 7, 1]):
        held_count = int(np.sum(labels[held_out] == label))
        assert abs(held_count - 0.2 * total) <= 1


def test_stratified_split_seed_determines_sample():
    labels = np.arange(1000) % 7

    first_remaining, first_held = stratified_split(labels, 0.1, seed=1)
    again_remaining, again_held = stratified_split(labels, 0.1, seed=1)
    other_remaining, other_held = stratified_split(labels, 0.1, seed=2)

    np.testing.assert_array_equal(first_held, again_held)
    np.testing.assert_array_equal(first_remaining, again_remaining)
    assert not np.array_equal(first_held, other_held)
    assert len(first_held) == len(other_held) == 100


def test_stratified_split_zero_fraction():
    remaining, held_out = stratified_split(np.arange(10) % 3, 0.0, seed=0)

    assert len(held_out) == 0
    np.testing.assert_array_equal(remaining, np.arange(10))


def test_stratified_split_exact_product():
    # 0.07 * 100 is 7.000000000000001 in float64, but 0.1 * 60000 is exact.
    _, held_out_small = stratified_split(np.arange(100) % 10, 0.07, seed=0)
    _, held_out_large = stratified_split(np.arange(60000) % 10, 0.1, seed=0)

    assert len(held_out_small) == 7
    assert len(held_out_large) == 6000


# Argument checks


@pytest.mark.parametrize("fraction", [0.51, -0.1, 1.0, float("nan")])
def test_validation_fraction_out_of_range(fraction):
    with pytest.raises(DataError) as raised:
        load_dataset("digits", validation_fraction=fraction)

    assert "validation_fraction" in str(raised.value)
    assert repr(fraction) in str(raised.value)


def test_unknown_dataset_name():
    with pytest.raises(DataError) as raised:
        load_dataset("cifar10")

    message = str(raised.value)
    assert "'cifar10'" in message
    for name in DATASET_NAMES:
        assert name in message


def test_negative_seed_rejected():
    with pytest.raises(DataError) as raised:
        load_dataset("digits", seed=-1)

    assert "seed" in str(raised.value)


def test_split_rejects_mismatched_lengths():
    with pytest.raises(DataError) as raised:
        Split(images=torch.zeros(3, 4), labels=torch.zeros(2, dtype=torch.int64))

    assert "3 images but 2 labels" in str(raised.value)


# digits


@pytest.fixture(scope="module")
def digits_seed_0() -> Dataset:
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def digits_seed_1() -> Dataset:
    return load_dataset("digits", seed=1)


def test_digits_split_sizes(digits_seed_0):
    dataset = digits_seed_0

    assert len(dataset.test) == 360
    assert len(dataset.validation) == math.ceil(0.1 * (1797 - 360))
    assert len(dataset.train) + len(dataset.validation) + len(dataset.test) == 1797
    assert dataset.n_features == 64
    assert dataset.n_classes == 10
    assert dataset.class_names == tuple("0123456789")
    assert dataset.name == "digits"


def test_digits_tensor_types(digits_seed_0):
    for split in (digits_seed_0.train, digits_seed_0.validation, digits_seed_0.test):
        assert split.images.dtype == torch.float32
        assert split.labels.dtype == torch.int64
        assert split.images.shape == (len(split), 64)
        assert split.images.min() >= 0.0
        assert split.images.max() <= 1.0
    assert digits_seed_0.train.images.max() == 1.0


def test_digits_test_split_stratified(digits_seed_0):
    from sklearn.datasets import load_digits

    all_counts = np.bincount(load_digits().target, minlength=10)
    test_counts = np.bincount(digits_seed_0.test.labels.numpy(), minlength=10)

    for label in range(10):
        assert abs(test_counts[label] - 0.2 * all_counts[label]) <= 1, label


def test_digits_test_split_independent_of_seed(digits_seed_0, digits_seed_1):
    assert torch.equal(digits_seed_0.test.images, digits_seed_1.test.images)
    assert torch.equal(digits_seed_0.test.labels, digits_seed_1.test.labels)


def test_digits_validation_depends_on_seed(digits_seed_0, digits_seed_1):
    assert len(digits_seed_0.validation) == len(digits_seed_1.validation)
    assert not torch.equal(digits_seed_0.validation.images, digits_seed_1.validation.images)


def test_digits_same_seed_same_validation(digits_seed_0):
    again = load_dataset("digits", seed=0)

    assert torch.equal(again.validation.images, digits_seed_0.validation.images)
    assert torch.equal(again.train.labels, digits_seed_0.train.labels)


def test_digits_zero_validation_fraction():
    dataset = load_dataset("digits", validation_fraction=0.0)

    assert dataset.validation.images.shape == (0, 64)
    assert dataset.validation.labels.shape == (0,)
    assert len(dataset.validation) == 0
    assert len(dataset.train) == 1797 - 360


# MNIST-style files


def test_idx_dataset_without_checksum(tmp_path, fake_files):
    folder = write_files(tmp_path / "mnist", fake_files)

    dataset = load_idx_dataset("mnist", folder, validation_fraction=0.1, seed=0, verify=False)

    assert len(dataset.train) == TRAIN_COUNT - 5
    assert len(dataset.validation) == 5
    assert len(dataset.test) == TEST_COUNT
    assert dataset.n_features == ROWS * COLUMNS
    assert dataset.train.images.shape == (TRAIN_COUNT - 5, ROWS * COLUMNS)
    np.testing.assert_array_equal(dataset.test.labels.numpy(), np.arange(TEST_COUNT) % 10)
    assert dataset.train.images.min() >= 0.0
    assert dataset.train.images.max() <= 1.0


def test_idx_dataset_pixel_scaling(tmp_path, fake_files):
    folder = write_files(tmp_path / "mnist", fake_files)
    expected = np.frombuffer(gzip.decompress(fake_files["t10k-images-idx3-ubyte.gz"])[16:], dtype=np.uint8)

    dataset = load_idx_dataset("mnist", folder, validation_fraction=0.0, verify=False)

    np.testing.assert_array_equal(
        dataset.test.images.numpy(), (expected.astype(np.float32) / np.float32(255)).reshape(TEST_COUNT, -1)
    )
    assert dataset.train.images[0, 0] == 1.0
    assert dataset.train.images[0, 1] == 0.0


def test_load_dataset_with_data_dir(tmp_path, fake_files, patched_md5):
    write_files(tmp_path / "mnist", fake_files)

    dataset = load_dataset("mnist", tmp_path, validation_fraction=0.2, seed=4)

    assert len(dataset.validation) == 10
    assert dataset.class_names == tuple("0123456789")
    assert dataset.name == "mnist"


def test_load_dataset_from_environment(tmp_path, monkeypatch, fake_files, patched_md5):
    write_files(tmp_path / "mnist", fake_files)
    monkeypatch.setenv("MICROGLIA_DATA", str(tmp_path))

    dataset = load_dataset("mnist")

    assert len(dataset.test) == TEST_COUNT


def test_fashion_mnist_class_names(tmp_path, monkeypatch, fake_files):
    checksums = {name: md5_hex(data) for name, data in fake_files.items()}
    monkeypatch.setitem(download_module.OFFICIAL_MD5, "fashion-mnist", checksums)
    write_files(tmp_path / "fashion-mnist", fake_files)

    dataset = load_dataset("fashion-mnist", tmp_path)

    assert dataset.class_names[0] == "T-shirt/top"
    assert dataset.class_names[9] == "Ankle boot"
    assert len(dataset.class_names) == dataset.n_classes == 10


def test_no_data_dir_explains_setup():
    with pytest.raises(DataError) as raised:
        load_dataset("mnist")

    message = str(raised.value)
    assert "MICROGLIA_DATA" in message
    assert "data_dir" in message
    assert "mnist/" in message
    for name in IDX_FILE_NAMES:
        assert name in message


def test_missing_files_listed_with_full_paths(tmp_path, fake_files):
    folder = write_files(tmp_path / "mnist", {"train-labels-idx1-ubyte.gz": fake_files["train-labels-idx1-ubyte.gz"]})

    with pytest.raises(DataError) as raised:
        load_dataset("mnist", tmp_path)

    message = str(raised.value)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert str((folder / name).absolute()) in message
    assert str(folder / "train-labels-idx1-ubyte.gz") not in message
    assert "--download" in message


def test_checksum_mismatch(tmp_path, fake_files):
    write_files(tmp_path / "mnist", fake_files)

    with pytest.raises(DataError) as raised:
        load_dataset("mnist", tmp_path)

    message = str(raised.value)
    assert "checksum mismatch" in message
    assert "train-images-idx3-ubyte.gz" in message
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message
    assert md5_hex(fake_files["train-images-idx3-ubyte.gz"]) in message
    assert "download" in message


def test_count_mismatch_in_dataset(tmp_path, fake_files, monkeypatch):
    files = dict(fake_files)
    files["t10k-labels-idx1-ubyte.gz"] = idx_gz_bytes(np.zeros(TEST_COUNT - 1, dtype=np.uint8))
    checksums = {name: md5_hex(data) for name, data in files.items()}
    monkeypatch.setitem(download_module.OFFICIAL_MD5, "mnist", checksums)
    write_files(tmp_path / "mnist", files)

    with pytest.raises(DataError) as raised:
        load_dataset("mnist", tmp_path)

    message = str(raised.value)
    assert "t10k-images-idx3-ubyte.gz" in message
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert f"{TEST_COUNT} images" in message
    assert f"{TEST_COUNT - 1} labels" in message


def test_image_size_mismatch(tmp_path, fake_files):
    files = dict(fake_files)
    files["t10k-images-idx3-ubyte.gz"] = idx_gz_bytes(np.zeros((TEST_COUNT, 2, 6), dtype=np.uint8))
    folder = write_files(tmp_path / "mnist", files)

    with pytest.raises(DataError) as raised:
        load_idx_dataset("mnist", folder, verify=False)

    message = str(raised.value)
    assert "image sizes differ" in message
    assert "4x3" in message
    assert "2x6" in message


# Download


def test_download_from_file_mirror(tmp_path, monkeypatch, fake_files, patched_md5):
    mirror = write_files(tmp_path / "mirror", fake_files)
    monkeypatch.setenv("MICROGLIA_MIRROR", mirror.as_uri())
    data_dir = tmp_path / "data"

    dataset = load_dataset("mnist", data_dir, download=True)

    assert len(dataset.test) == TEST_COUNT
    assert sorted(path.name for path in (data_dir / "mnist").iterdir()) == sorted(IDX_FILE_NAMES)
    for name, data in fake_files.items():
        assert (data_dir / "mnist" / name).read_bytes() == data


def test_download_keeps_existing_files(tmp_path, monkeypatch, fake_files, patched_md5):
    mirror = write_files(tmp_path / "mirror", fake_files)
    (mirror / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("MICROGLIA_MIRROR", mirror.as_uri() + "/")
    folder = write_files(
        tmp_path / "data" / "mnist", {"train-labels-idx1-ubyte.gz": fake_files["train-labels-idx1-ubyte.gz"]}
    )

    dataset = load_dataset("mnist", tmp_path / "data", download=True)

    assert len(dataset.train) + len(dataset.validation) == TRAIN_COUNT
    assert (folder / "train-labels-idx1-ubyte.gz").exists()


def test_download_tries_next_mirror(tmp_path, monkeypatch, fake_files, patched_md5):
    good = write_files(tmp_path / "good", fake_files)
    bad = write_files(tmp_path / "bad", {name: b"not the data" for name in fake_files})
    monkeypatch.setitem(download_module.MIRRORS, "mnist", (bad.as_uri(), good.as_uri()))

    dataset = load_dataset("mnist", tmp_path / "data", download=True)

    assert len(dataset.test) == TEST_COUNT
    assert sorted(path.name for path in (tmp_path / "data" / "mnist").iterdir()) == sorted(IDX_FILE_NAMES)


def test_download_bad_content_leaves_no_file(tmp_path, monkeypatch, fake_files, patched_md5):
    files = dict(fake_files)
    files["t10k-images-idx3-ubyte.gz"] = b"corrupted on the mirror"
    mirror = write_files(tmp_path / "mirror", files)
    monkeypatch.setenv("MICROGLIA_MIRROR", mirror.as_uri())
    folder = tmp_path / "data" / "mnist"

    with pytest.raises(DataError) as raised:
        load_dataset("mnist", tmp_path / "data", download=True)

    message = str(raised.value)
    assert "t10k-images-idx3-ubyte.gz" in message
    assert "checksum mismatch" in message
    assert not (folder / "t10k-images-idx3-ubyte.gz").exists()
    # The other three files were downloaded, and no temporary file is left behind.
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        name for name in IDX_FILE_NAMES if name != "t10k-images-idx3-ubyte.gz"
    )


def test_download_offline_lists_files(tmp_path, monkeypatch, patched_md5):
    mirror_url = (tmp_path / "no-such-mirror").as_uri()
    monkeypatch.setenv("MICROGLIA_MIRROR", mirror_url)
    folder = tmp_path / "data" / "mnist"

    with pytest.raises(DataError) as raised:
        load_dataset("mnist", tmp_path / "data", download=True)

    message = str(raised.value)
    for name in IDX_FILE_NAMES:
        assert name in message
    assert str(folder) in message
    assert mirror_url in message
    assert list(folder.iterdir()) == []


def test_default_mirrors_are_official():
    assert download_module.MIRRORS["mnist"] == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    assert download_module.MIRRORS["fashion-mnist"] == (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    )


# User arrays


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.fixture
def npz_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, size=(40, 2, 3), dtype=np.uint8),
        "y_train": np.arange(40) % 4,
        "x_test": rng.integers(0, 256, size=(12, 6), dtype=np.uint8),
        "y_test": np.arange(12) % 4,
    }


def test_arrays_uint8_scaled_and_flattened(tmp_path, npz_arrays):
    path = write_npz(tmp_path / "data.npz", **npz_arrays)

    dataset = load_dataset("arrays", path, validation_fraction=0.25, seed=0)

    assert dataset.name == "arrays"
    assert dataset.n_features == 6
    assert dataset.n_classes == 4
    assert dataset.class_names == ("0", "1", "2", "3")
    assert len(dataset.train) == 30
    assert len(dataset.validation) == 10
    np.testing.assert_array_equal(
        dataset.test.images.numpy(), npz_arrays["x_test"].astype(np.float32) / np.float32(255)
    )
    np.testing.assert_array_equal(dataset.test.labels.numpy(), npz_arrays["y_test"])


def test_arrays_float_kept_as_given(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    arrays["x_train"] = np.linspace(-1.0, 2.0, 40 * 6).reshape(40, 6)
    arrays["x_test"] = np.full((12, 6), 0.5, dtype=np.float32)
    path = write_npz(tmp_path / "data.npz", **arrays)

    dataset = load_arrays(path, validation_fraction=0.0)

    np.testing.assert_array_equal(dataset.train.images.numpy(), arrays["x_train"].astype(np.float32))
    assert dataset.train.images.dtype == torch.float32


def test_arrays_missing_key(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    del arrays["y_test"]
    path = write_npz(tmp_path / "data.npz", **arrays)

    with pytest.raises(DataError) as raised:
        load_arrays(path)

    assert "missing arrays y_test" in str(raised.value)
    assert "data.npz" in str(raised.value)


def test_arrays_nan_rows(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    x_train = np.zeros((40, 6))
    x_train[7, 2] = np.nan
    x_train[7, 3] = np.inf
    x_train[20, 0] = -np.inf
    arrays["x_train"] = x_train
    path = write_npz(tmp_path / "data.npz", **arrays)

    with pytest.raises(DataError) as raised:
        load_arrays(path)

    message = str(raised.value)
    assert "x_train" in message
    assert "3 NaN or infinite values" in message
    assert "in 2 rows" in message
    assert "the first in row 7" in message


def test_arrays_float_labels_rejected(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    arrays["y_train"] = arrays["y_train"].astype(np.float64)
    path = write_npz(tmp_path / "data.npz", **arrays)

    with pytest.raises(DataError) as raised:
        load_arrays(path)

    assert "y_train" in str(raised.value)
    assert "integer" in str(raised.value)


def test_arrays_negative_labels_rejected(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    arrays["y_test"] = arrays["y_test"] - 1
    path = write_npz(tmp_path / "data.npz", **arrays)

    with pytest.raises(DataError) as raised:
        load_arrays(path)

    assert "y_test" in str(raised.value)
    assert "negative" in str(raised.value)


def test_arrays_classes_from_largest_label(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    arrays["y_test"] = np.full(12, 6)
    path = write_npz(tmp_path / "data.npz", **arrays)

    dataset = load_arrays(path)

    assert dataset.n_classes == 7


def test_arrays_count_mismatch(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    arrays["y_train"] = arrays["y_train"][:-3]
    path = write_npz(tmp_path / "data.npz", **arrays)

    with pytest.raises(DataError) as raised:
        load_arrays(path)

    assert "x_train has 40 rows but y_train has 37 labels" in str(raised.value)


def test_arrays_feature_mismatch(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    arrays["x_test"] = arrays["x_test"][:, :5]
    path = write_npz(tmp_path / "data.npz", **arrays)

    with pytest.raises(DataError) as raised:
        load_arrays(path)

    assert "x_test has 5" in str(raised.value)


def test_arrays_integer_images_rejected(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    arrays["x_train"] = arrays["x_train"].astype(np.int64)
    path = write_npz(tmp_path / "data.npz", **arrays)

    with pytest.raises(DataError) as raised:
        load_arrays(path)

    assert "x_train must be uint8" in str(raised.value)


def test_arrays_object_array_rejected(tmp_path, npz_arrays):
    arrays = dict(npz_arrays)
    arrays["y_train"] = np.array([object()] * 40, dtype=object)
    path = write_npz(tmp_path / "data.npz", **arrays)

    with pytest.raises(DataError) as raised:
        load_arrays(path)

    assert "y_train" in str(raised.value)


def test_arrays_not_npz(tmp_path, npz_arrays):
    single = tmp_path / "single.npy"
    np.save(single, npz_arrays["x_test"])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 this is not a zip archive")

    with pytest.raises(DataError) as single_raised:
        load_arrays(single)
    with pytest.raises(DataError) as garbage_raised:
        load_arrays(garbage)
    with pytest.raises(DataError) as missing_raised:
        load_arrays(tmp_path / "absent.npz")

    assert "single array" in str(single_raised.value)
    assert "garbage.npz" in str(garbage_raised.value)
    assert "not found" in str(missing_raised.value)


def test_arrays_needs_path():
    with pytest.raises(DataError) as raised:
        load_dataset("arrays")

    assert ".npz" in str(raised.value)


# Real MNIST and Fashion-MNIST, when MICROGLIA_TEST_DATA points to them


def real_data_dir(name: str) -> Path:
    root = os.environ.get("MICROGLIA_TEST_DATA")
    if not root:
        pytest.skip("MICROGLIA_TEST_DATA is not set")
    if not (Path(root) / name).is_dir():
        pytest.skip(f"MICROGLIA_TEST_DATA has no {name}/ folder")
    return Path(root)


def test_real_mnist():
    data_dir = real_data_dir("mnist")

    dataset = load_dataset("mnist", data_dir, validation_fraction=0.1, seed=0)

    assert len(dataset.train) == 60000 - 6000
    assert len(dataset.validation) == 6000
    assert len(dataset.test) == 10000
    assert dataset.n_features == 784
    assert dataset.train.images.shape == (54000, 784)
    assert torch.bincount(dataset.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    train_counts = torch.bincount(torch.cat([dataset.train.labels, dataset.validation.labels])).tolist()
    assert train_counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert dataset.test.images.min() == 0.0
    assert dataset.test.images.max() == 1.0
    # Mean test pixel is 33.7912 on the 0..255 scale.
    assert abs(dataset.test.images.double().mean().item() * 255 - 33.7912) < 1e-3


def test_real_fashion_mnist():
    data_dir = real_data_dir("fashion-mnist")

    dataset = load_dataset("fashion-mnist", data_dir, validation_fraction=0.1, seed=0)

    assert len(dataset.test) == 10000
    assert torch.bincount(dataset.test.labels).tolist() == [1000] * 10
    assert torch.bincount(dataset.validation.labels).tolist() == [600] * 10
