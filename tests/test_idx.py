"""Tests of the IDX reader on small files written by the tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microglia.data import DataError, load_idx_pair, read_idx
from microglia.data.idx import IDX_DTYPES, IMAGES_MAGIC, LABELS_MAGIC

TYPE_CODES = {np.dtype(dtype).newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode `array` as an IDX file: magic number, big-endian sizes, big-endian data."""
    native = np.dtype(array.dtype).newbyteorder("=")
    header = bytes([0, 0, TYPE_CODES[native], array.ndim])
    header += b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + array.astype(native.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write `array` to `path` as IDX, gzip-compressed when the name ends in .gz."""
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize("file_name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_round_trip(tmp_path, images, file_name):
    path = write_idx(tmp_path / file_name, images)

    result = read_idx(path)

    assert result.dtype == np.uint8
    assert result.shape == (7, 5, 3)
    np.testing.assert_array_equal(result, images)
    assert result.flags.writeable


def test_read_idx_magic_numbers(tmp_path, images):
    labels = np.arange(7, dtype=np.uint8)
    images_path = write_idx(tmp_path / "images", images)
    labels_path = write_idx(tmp_path / "labels", labels)

    assert int.from_bytes(images_path.read_bytes()[:4], "big") == IMAGES_MAGIC == 2051
    assert int.from_bytes(labels_path.read_bytes()[:4], "big") == LABELS_MAGIC == 2049
    np.testing.assert_array_equal(read_idx(labels_path), labels)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_multibyte_types(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 12).astype(dtype) * dtype(3)

    result = read_idx(write_idx(tmp_path / "values.gz", array))

    assert result.dtype == np.dtype(dtype)
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_empty_first_dimension(tmp_path):
    array = np.zeros((0, 28, 28), dtype=np.uint8)

    result = read_idx(write_idx(tmp_path / "empty.gz", array))

    assert result.shape == (0, 28, 28)


def test_read_idx_corrupted_gzip(tmp_path, images):
    compressed = bytearray(gzip.compress(idx_bytes(images)))
    # Overwrite part of the deflate stream, after the 10-byte gzip header.
    compressed[12:20] = b"\xff" * 8
    path = tmp_path / "broken-idx3-ubyte.gz"
    path.write_bytes(bytes(compressed))

    with pytest.raises(DataError) as raised:
        read_idx(path)

    message = str(raised.value)
    assert "broken-idx3-ubyte.gz" in message
    assert "corrupted gzip" in message


def test_read_idx_truncated_gzip(tmp_path, images):
    compressed = gzip.compress(idx_bytes(images))
    path = tmp_path / "cut-idx3-ubyte.gz"
    path.write_bytes(compressed[: len(compressed) // 2])

    with pytest.raises(DataError) as raised:
        read_idx(path)

    message = str(raised.value)
    assert "cut-idx3-ubyte.gz" in message
    assert "corrupted gzip" in message


def test_read_idx_gz_name_without_gzip_data(tmp_path, images):
    path = write_idx(tmp_path / "plain-idx3-ubyte", images)
    renamed = path.rename(tmp_path / "plain-idx3-ubyte.gz")

    with pytest.raises(DataError) as raised:
        read_idx(renamed)

    assert "plain-idx3-ubyte.gz" in str(raised.value)
    assert "gzip" in str(raised.value)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated_data(tmp_path, images, compress):
    data = idx_bytes(images)[:-10]
    path = tmp_path / ("short-idx3-ubyte.gz" if compress else "short-idx3-ubyte")
    path.write_bytes(gzip.compress(data) if compress else data)

    with pytest.raises(DataError) as raised:
        read_idx(path)

    message = str(raised.value)
    assert path.name in message
    assert "truncated" in message
    assert "needs 105 data bytes" in message
    assert "found 95" in message


def test_read_idx_trailing_bytes(tmp_path, images):
    path = tmp_path / "long-idx3-ubyte"
    path.write_bytes(idx_bytes(images) + b"\x00\x01\x02")

    with pytest.raises(DataError) as raised:
        read_idx(path)

    message = str(raised.value)
    assert "long-idx3-ubyte" in message
    assert "trailing bytes" in message
    assert "needs 105 data bytes" in message
    assert "found 108" in message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"\x01\x00\x08\x01", "first two bytes must be zero"),
        (b"\x00\x07\x08\x01", "first two bytes must be zero"),
        (b"\x00\x00\x0a\x01", "unknown element type code 0x0a"),
        (b"\x00\x00\x08\x00", "zero dimensions"),
        (b"\x00\x00", "fewer than the 4-byte magic number"),
    ],
)
def test_read_idx_invalid_magic(tmp_path, header, expected):
    path = tmp_path / "bad-magic-idx1-ubyte"
    path.write_bytes(header + (3).to_bytes(4, "big") + b"\x01\x02\x03" if len(header) == 4 else header)

    with pytest.raises(DataError) as raised:
        read_idx(path)

    message = str(raised.value)
    assert "bad-magic-idx1-ubyte" in message
    assert expected in message


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "header-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big"))

    with pytest.raises(DataError) as raised:
        read_idx(path)

    message = str(raised.value)
    assert "header-idx3-ubyte" in message
    assert "truncated IDX header" in message
    assert "16 header bytes" in message


def test_read_idx_missing_file(tmp_path):
    path = tmp_path / "absent" / "train-images-idx3-ubyte.gz"

    with pytest.raises(DataError) as raised:
        read_idx(path)

    assert str(path.absolute()) in str(raised.value)
    assert "not found" in str(raised.value)


def test_load_idx_pair_reads_both(tmp_path, images):
    labels = np.array([0, 1, 2, 3, 4, 5, 9], dtype=np.uint8)
    images_path = write_idx(tmp_path / "images.gz", images)
    labels_path = write_idx(tmp_path / "labels.gz", labels)

    read_images, read_labels = load_idx_pair(images_path, labels_path)

    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


def test_load_idx_pair_count_mismatch(tmp_path, images):
    images_path = write_idx(tmp_path / "some-images.gz", images)
    labels_path = write_idx(tmp_path / "some-labels.gz", np.zeros(6, dtype=np.uint8))

    with pytest.raises(DataError) as raised:
        load_idx_pair(images_path, labels_path)

    message = str(raised.value)
    assert "some-images.gz" in message
    assert "some-labels.gz" in message
    assert "7 images" in message
    assert "6 labels" in message


def test_load_idx_pair_label_out_of_range(tmp_path, images):
    labels = np.array([0, 1, 2, 10, 4, 12, 6], dtype=np.uint8)
    images_path = write_idx(tmp_path / "images.gz", images)
    labels_path = write_idx(tmp_path / "labels-idx1-ubyte.gz", labels)

    with pytest.raises(DataError) as raised:
        load_idx_pair(images_path, labels_path)

    message = str(raised.value)
    assert "labels-idx1-ubyte.gz" in message
    assert "2 labels are outside 0..9" in message
    assert "the first is 10 at index 3" in message


def test_load_idx_pair_swapped_files(tmp_path, images):
    images_path = write_idx(tmp_path / "images.gz", images)
    labels_path = write_idx(tmp_path / "labels.gz", np.zeros(7, dtype=np.uint8))

    with pytest.raises(DataError) as raised:
        load_idx_pair(labels_path, images_path)

    assert "labels.gz" in str(raised.value)
    assert "expected uint8 images" in str(raised.value)


def _read_or_data_error(path: Path) -> None:
    try:
        result = read_idx(path)
    except DataError:
        return
    assert isinstance(result, np.ndarray)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200), compress=st.booleans())
def test_read_idx_random_bytes(fuzz_dir, data, compress):
    path = fuzz_dir / ("random.gz" if compress else "random")
    path.write_bytes(gzip.compress(data) if compress else data)

    _read_or_data_error(path)


@settings(max_examples=150, deadline=None)
@given(
    type_code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
    shape=st.lists(st.integers(0, 6), min_size=0, max_size=4),
    payload=st.binary(max_size=300),
    compress=st.booleans(),
)
def test_read_idx_random_payload(fuzz_dir, type_code, shape, payload, compress):
    # A well-formed header followed by data of random length reaches the size checks.
    header = bytes([0, 0, type_code, len(shape)]) + b"".join(size.to_bytes(4, "big") for size in shape)
    data = header + payload
    path = fuzz_dir / ("payload.gz" if compress else "payload")
    path.write_bytes(gzip.compress(data) if compress else data)

    _read_or_data_error(path)


@settings(max_examples=150, deadline=None)
@given(
    image_count=st.integers(0, 4),
    label_count=st.integers(0, 4),
    labels=st.binary(min_size=4, max_size=4),
    damage=st.one_of(st.none(), st.tuples(st.sampled_from(["images", "labels"]), st.integers(0, 40), st.binary(max_size=3))),
)
def test_load_idx_pair_random_damage(fuzz_dir, image_count, label_count, labels, damage):
    # Valid pairs of random counts and label bytes, then one random overwrite in one file.
    files = {
        "images": idx_bytes(np.zeros((image_count, 2, 2), dtype=np.uint8)),
        "labels": idx_bytes(np.frombuffer(labels[:label_count], dtype=np.uint8)),
    }
    if damage is not None:
        name, position, replacement = damage
        data = bytearray(files[name])
        data[position : position + len(replacement)] = replacement
        files[name] = bytes(data)
    for name, data in files.items():
        (fuzz_dir / f"pair-{name}").write_bytes(data)

    try:
        images, read_labels = load_idx_pair(fuzz_dir / "pair-images", fuzz_dir / "pair-labels")
    except DataError:
        return
    assert len(images) == len(read_labels)
    assert read_labels.max(initial=0) < 10
