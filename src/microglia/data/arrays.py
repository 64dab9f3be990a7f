"""Loader for user datasets stored as numpy arrays in an .npz file."""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from microglia.data.splits import Dataset, build_dataset, check_seed, check_validation_fraction
from microglia.errors import DataError

logger = logging.getLogger(__name__)

ARRAYS_NAME = "arrays"
REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")

# Labels must be class indices 0..C-1. The limit keeps `class_names` (one string per
# class) small and catches raw ids that were never mapped to consecutive integers.
MAX_CLASSES = 1_000_000

UINT8_MAX_VALUE = 255.0


def load_arrays(
    path: str | os.PathLike, *, validation_fraction: float = 0.1, seed: int = 0
) -> Dataset:
    """Load a dataset from an .npz file with the arrays x_train, y_train, x_test and y_test.

    `load_dataset("arrays", data_dir=path)` calls this function.

    x arrays are uint8 or float with shape [N, F] or [N, H, W], flattened to [N, F].
    uint8 values are divided by 255. Float values are kept as given (converted to
    float32) and must be finite. y arrays are integer class indices [N]. The number of
    classes C is the largest label in y_train and y_test plus one, so labels must be in
    0..C-1. The validation split is a stratified `validation_fraction` of the training
    arrays, drawn with `seed`. The test split is x_test and y_test. Raises DataError
    that names the array when the file or an array is invalid.
    """
    check_validation_fraction(validation_fraction)
    check_seed(seed)
    path = Path(path)
    arrays = _read_npz(path)

    x_train = _images_to_float32(arrays["x_train"], "x_train", path)
    x_test = _images_to_float32(arrays["x_test"], "x_test", path)
    y_train = _check_labels(arrays["y_train"], "y_train", path)
    y_test = _check_labels(arrays["y_test"], "y_test", path)

    for x_key, x, y_key, y in (("x_train", x_train, "y_train", y_train), ("x_test", x_test, "y_test", y_test)):
        if len(x) != len(y):
            raise DataError(
                f"{path}: {x_key} has {len(x)} rows but {y_key} has {len(y)} labels"
            )
    if x_train.shape[1] != x_test.shape[1]:
        raise DataError(
            f"{path}: x_train has {x_train.shape[1]} features per sample but x_test has {x_test.shape[1]}"
        )

    largest_label = max(int(y_train.max()), int(y_test.max()))
    if largest_label >= MAX_CLASSES:
        raise DataError(
            f"{path}: the largest label is {largest_label}, but labels must be class indices "
            f"0..C-1 with C at most {MAX_CLASSES}. Map the labels to consecutive integers from 0."
        )
    n_classes = largest_label + 1
    n_empty = n_classes - len(np.unique(y_train))
    if n_empty:
        logger.warning(
            "%s: %d of the %d classes (0..%d) have no sample in y_train", path, n_empty, n_classes, largest_label
        )

    return build_dataset(
        ARRAYS_NAME,
        x_train,
        y_train,
        x_test,
        y_test,
        scale=1.0,
        n_classes=n_classes,
        class_names=tuple(str(label) for label in range(n_classes)),
        validation_fraction=validation_fraction,
        seed=seed,
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read the required arrays from an .npz file without unpickling anything."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError as error:
        raise DataError(f"file not found: {path.absolute()}") from error
    except OSError as error:
        raise DataError(f"failed to read {path.absolute()}: {error.strerror or error}") from error

    # numpy.load leaves its own file handle open when the zip archive is invalid, so the
    # file is opened here and every array is read before it closes.
    with handle:
        try:
            loaded = np.load(handle, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise DataError(f"{path}: not a valid .npz file: {error}") from error

        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(
                f"{path}: contains a single array, expected an .npz archive with the arrays "
                f"{', '.join(REQUIRED_KEYS)} (write it with numpy.savez)"
            )

        with loaded:
            missing = [key for key in REQUIRED_KEYS if key not in loaded.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {', '.join(missing)}. The file contains "
                    f"{', '.join(loaded.files) or 'no arrays'}, but {', '.join(REQUIRED_KEYS)} are required"
                )
            arrays = {}
            for key in REQUIRED_KEYS:
                try:
                    arrays[key] = loaded[key]
                except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
                    # ValueError includes object arrays, which allow_pickle=False rejects.
                    raise DataError(f"{path}: failed to read array {key}: {error}") from error
    return arrays


def _images_to_float32(images: np.ndarray, key: str, path: Path) -> np.ndarray:
    """Flatten images [N, F] or [N, H, W] to float32 [N, F], dividing uint8 values by 255."""
    if images.ndim not in (2, 3):
        raise DataError(f"{path}: {key} must have shape [N, F] or [N, H, W], got {images.shape}")
    if images.shape[0] == 0:
        raise DataError(f"{path}: {key} has no rows")
    n_features = int(np.prod(images.shape[1:]))
    if n_features == 0:
        raise DataError(f"{path}: {key} has no features, shape {images.shape}")
    flat = images.reshape(len(images), n_features)

    if images.dtype == np.uint8:
        return flat.astype(np.float32) / np.float32(UINT8_MAX_VALUE)
    if images.dtype.kind != "f":
        raise DataError(
            f"{path}: {key} must be uint8 (pixel values 0..255) or float, got {images.dtype}"
        )

    converted = flat.astype(np.float32)
    # Checked after the conversion, because float64 values beyond the float32 range become infinite.
    is_bad = ~np.isfinite(converted)
    bad_rows = np.flatnonzero(is_bad.any(axis=1))
    if bad_rows.size:
        raise DataError(
            f"{path}: {key} contains {int(is_bad.sum())} NaN or infinite values (after conversion "
            f"to float32) in {bad_rows.size} rows, the first in row {int(bad_rows[0])}. Remove or fix these rows."
        )
    if converted.min() < 0.0 or converted.max() > 1.0:
        logger.warning(
            "%s: %s has values in [%g, %g], outside [0, 1], which are used as given",
            path,
            key,
            float(converted.min()),
            float(converted.max()),
        )
    return converted


def _check_labels(labels: np.ndarray, key: str, path: Path) -> np.ndarray:
    """Return `labels` after checking that it is a non-empty 1-D array of non-negative integers."""
    if labels.ndim != 1:
        raise DataError(f"{path}: {key} must have shape [N], got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataError(
            f"{path}: {key} must contain integer class indices, got dtype {labels.dtype}"
        )
    if labels.size == 0:
        raise DataError(f"{path}: {key} has no labels")
    negative = np.flatnonzero(labels < 0)
    if negative.size:
        first = int(negative[0])
        raise DataError(
            f"{path}: {key} contains {negative.size} negative labels, the first "
            f"{int(labels[first])} at index {first}. Labels must be class indices 0..C-1"
        )
    return labels
