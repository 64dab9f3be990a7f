"""Reader for the IDX file format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file starts with a big-endian header: two zero bytes, one byte with the element
type code, one byte with the number of dimensions, then one unsigned 32-bit size per
dimension. The elements follow in row-major order, also big-endian.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import zlib
from pathlib import Path

import numpy as np

from microglia.errors import DataError

logger = logging.getLogger(__name__)

# Element type code (third header byte) -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# Magic numbers of the MNIST files: uint8 elements with 1 dimension (labels) or 3 (images).
LABELS_MAGIC = 0x00000801
IMAGES_MAGIC = 0x00000803

_GZIP_SIGNATURE = b"\x1f\x8b"


def decompress_gzip(data: bytes, source: str | os.PathLike) -> bytes:
    """Decompress gzip data read from `source`, which only names the file in errors.

    Raises DataError when the stream is corrupted or truncated.
    """
    try:
        return gzip.decompress(data)
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as error:
        raise DataError(
            f"{source}: corrupted gzip file ({error}). Delete it and download or copy it again."
        ) from error


def parse_idx(data: bytes, source: str | os.PathLike) -> np.ndarray:
    """Parse uncompressed IDX bytes into an array with the shape stored in the header.

    Multi-byte element types are converted to native byte order. The result is a
    writable array that owns its memory. `source` only names the file in errors.
    Raises DataError when the header is invalid or the data length does not match the
    dimensions exactly.
    """
    if len(data) < 4:
        raise DataError(
            f"{source}: not an IDX file, it has {len(data)} bytes, fewer than the 4-byte magic number"
        )

    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{source}: invalid IDX magic number 0x{magic:08x}: the first two bytes must be zero "
            f"(MNIST uses 0x{LABELS_MAGIC:08x} for labels and 0x{IMAGES_MAGIC:08x} for images)"
        )
    type_code = data[2]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02x}" for code in IDX_DTYPES)
        raise DataError(
            f"{source}: invalid IDX magic number 0x{magic:08x}: unknown element type code "
            f"0x{type_code:02x} (known codes: {known})"
        )
    n_dims = data[3]
    if n_dims == 0:
        raise DataError(f"{source}: invalid IDX magic number 0x{magic:08x}: zero dimensions")

    header_bytes = 4 + 4 * n_dims
    if len(data) < header_bytes:
        raise DataError(
            f"{source}: truncated IDX header: {n_dims} dimensions need {header_bytes} header bytes, "
            f"the file has {len(data)}"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(n_dims)
    )

    dtype = IDX_DTYPES[type_code]
    expected_bytes = math.prod(shape) * dtype.itemsize
    actual_bytes = len(data) - header_bytes
    if actual_bytes != expected_bytes:
        problem = "truncated" if actual_bytes < expected_bytes else "trailing bytes after the data"
        raise DataError(
            f"{source}: {problem}: shape {shape} needs {expected_bytes} data bytes after the "
            f"{header_bytes}-byte header, found {actual_bytes}"
        )

    # np.frombuffer returns a read-only view of `data`. The copy (or the byte order
    # conversion, which also copies) makes the array writable, which torch.from_numpy needs.
    values = np.frombuffer(data, dtype=dtype, offset=header_bytes).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=True)


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """Read a whole file. Raises DataError that names the absolute path when it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise DataError(f"file not found: {path.absolute()}") from error
    except OSError as error:
        raise DataError(f"failed to read {path.absolute()}: {error.strerror or error}") from error


def decode_idx(data: bytes, source: str | os.PathLike) -> np.ndarray:
    """Parse IDX bytes as `parse_idx` does, after decompressing them when they are gzip data.

    Data that starts with the gzip signature is decompressed, as is any data whose
    source name ends in ".gz". Other data is parsed as raw IDX.
    """
    if data.startswith(_GZIP_SIGNATURE) or str(source).endswith(".gz"):
        data = decompress_gzip(data, source)
    return parse_idx(data, source)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a native-byte-order numpy array.

    MNIST image files give uint8 arrays of shape [N, 28, 28], label files uint8 arrays of
    shape [N]. Raises DataError when the file is missing, not valid gzip, or not valid IDX.
    """
    return decode_idx(read_file_bytes(path), path)


def check_idx_pair(
    images: np.ndarray,
    labels: np.ndarray,
    images_source: str | os.PathLike,
    labels_source: str | os.PathLike,
    n_classes: int = 10,
) -> None:
    """Raise DataError unless `images` [N, H, W] and `labels` [N] form a valid uint8 MNIST-style pair.

    Labels must be in 0..n_classes-1.
    """
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(
            f"{images_source}: expected uint8 images of shape [N, rows, columns] "
            f"(magic 0x{IMAGES_MAGIC:08x}), found {images.dtype} with shape {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{labels_source}: expected uint8 labels of shape [N] (magic 0x{LABELS_MAGIC:08x}), "
            f"found {labels.dtype} with shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"image and label counts differ: {images_source} has {len(images)} images, "
            f"{labels_source} has {len(labels)} labels"
        )

    invalid = np.flatnonzero(labels >= n_classes)
    if invalid.size:
        first = int(invalid[0])
        raise DataError(
            f"{labels_source}: {invalid.size} labels are outside 0..{n_classes - 1}, "
            f"the first is {int(labels[first])} at index {first}"
        )


def load_idx_pair(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    n_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file without checking any checksum.

    Returns uint8 images [N, H, W] and uint8 labels [N]. Raises DataError when a file is
    missing or invalid, when the counts differ, or when a label is outside 0..n_classes-1.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    check_idx_pair(images, labels, images_path, labels_path, n_classes)
    return images, labels
