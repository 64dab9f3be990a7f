"""Loaders for the built-in datasets: scikit-learn digits, MNIST and Fashion-MNIST."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from microglia.data.arrays import ARRAYS_NAME, load_arrays
from microglia.data.download import (
    IDX_FILE_NAMES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    download_missing_files,
    verify_md5,
)
from microglia.data.idx import check_idx_pair, decode_idx, read_file_bytes
from microglia.data.splits import (
    Dataset,
    build_dataset,
    check_seed,
    check_validation_fraction,
    stratified_split,
)
from microglia.errors import DataError

logger = logging.getLogger(__name__)

DATASET_NAMES = ("digits", "mnist", "fashion-mnist")
DATA_DIR_ENV_VAR = "MICROGLIA_DATA"

DIGIT_CLASS_NAMES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IDX_CLASS_NAMES = {"mnist": DIGIT_CLASS_NAMES, "fashion-mnist": FASHION_MNIST_CLASS_NAMES}

# The digits test split is drawn with this seed, whatever the `seed` argument, so the
# test set is the same in every run.
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0
# Each load_digits pixel counts the set pixels in a 4x4 block of a 32x32 bitmap, so 0..16.
DIGITS_MAX_VALUE = 16.0
IDX_MAX_VALUE = 255.0


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    validation_fraction: float = 0.1,
    seed: int = 0,
    download: bool = False,
) -> Dataset:
    """Load a dataset with train, validation and test splits.

    Images are float32 [N, F], labels int64 [N].

    - "digits": scikit-learn's 8x8 digits (F = 64), scaled to [0, 1]. The test split is a
      stratified 20% drawn with a fixed seed, so it never changes. `data_dir` is unused.
    - "mnist", "fashion-mnist": the four official .gz files in `<data_dir>/<name>/`
      (F = 784, scaled to [0, 1]). `data_dir` defaults to $MICROGLIA_DATA. Each file's
      md5 must equal the official one. The test split is the official t10k set. With
      `download=True`, missing files are downloaded first. Other datasets ignore
      `download`.
    - "arrays": `data_dir` is the path of an .npz file, see `load_arrays`.

    The validation split is a stratified `validation_fraction` (in [0, 0.5]) of the
    training part, drawn with `seed`. A fraction of 0 gives an empty validation split.
    Raises DataError for an unknown name, an invalid argument, or missing or invalid files.
    """
    check_validation_fraction(validation_fraction)
    check_seed(seed)

    if name == "digits":
        return load_digits_dataset(validation_fraction=validation_fraction, seed=seed)
    if name in IDX_CLASS_NAMES:
        folder = resolve_data_dir(name, data_dir) / name
        if download:
            download_missing_files(name, folder)
        return load_idx_dataset(name, folder, validation_fraction=validation_fraction, seed=seed)
    if name == ARRAYS_NAME:
        if data_dir is None:
            raise DataError(
                'dataset "arrays" needs the path of an .npz file: pass it with --data-dir (data_dir in Python)'
            )
        return load_arrays(data_dir, validation_fraction=validation_fraction, seed=seed)

    known = ", ".join([*DATASET_NAMES, ARRAYS_NAME])
    raise DataError(f"unknown dataset {name!r}, expected one of: {known}")


def resolve_data_dir(name: str, data_dir: str | os.PathLike | None) -> Path:
    """Return `data_dir`, else $MICROGLIA_DATA. Raises DataError that explains the layout when neither is set."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV_VAR) or None
    if data_dir is None:
        files = ", ".join(IDX_FILE_NAMES)
        raise DataError(
            f"no data folder for {name}: pass data_dir or set the environment variable "
            f"{DATA_DIR_ENV_VAR} to a folder that contains {name}/ with the files {files}. "
            f"With download=True (--download on the command line) the files are downloaded there."
        )
    return Path(data_dir).expanduser()


def load_digits_dataset(*, validation_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """Load scikit-learn's digits (1797 images of 8x8 pixels) as a Dataset with 64 features."""
    check_validation_fraction(validation_fraction)
    check_seed(seed)
    # Imported here because only this loader needs scikit-learn, and importing
    # sklearn.datasets took about 2 s on a 2-core machine.
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    images = images / DIGITS_MAX_VALUE
    train_part, test_part = stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_TEST_SEED)
    return build_dataset(
        "digits",
        images[train_part],
        labels[train_part],
        images[test_part],
        labels[test_part],
        scale=1.0,
        n_classes=10,
        class_names=DIGIT_CLASS_NAMES,
        validation_fraction=validation_fraction,
        seed=seed,
    )


def load_idx_dataset(
    name: str,
    folder: str | os.PathLike,
    *,
    validation_fraction: float = 0.1,
    seed: int = 0,
    verify: bool = True,
) -> Dataset:
    """Load MNIST or Fashion-MNIST from the four official .gz files in `folder`.

    With `verify=False` the md5 check is skipped, which lets tests use small files.
    """
    if name not in IDX_CLASS_NAMES:
        raise DataError(f"unknown IDX dataset {name!r}, expected one of: {', '.join(IDX_CLASS_NAMES)}")
    check_validation_fraction(validation_fraction)
    check_seed(seed)
    folder = Path(folder)
    logger.debug("Reading %s from %s", name, folder)
    arrays = read_idx_files(name, folder, verify=verify)
    return build_dataset(
        name,
        arrays[TRAIN_IMAGES],
        arrays[TRAIN_LABELS],
        arrays[TEST_IMAGES],
        arrays[TEST_LABELS],
        scale=IDX_MAX_VALUE,
        n_classes=10,
        class_names=IDX_CLASS_NAMES[name],
        validation_fraction=validation_fraction,
        seed=seed,
    )


def read_idx_files(name: str, folder: Path, *, verify: bool = True) -> dict[str, np.ndarray]:
    """Read the four IDX files of `name` in `folder`, keyed by file name.

    Images are uint8 [N, 28, 28], labels uint8 [N]. Raises DataError when a file is
    missing, fails its md5 check (unless `verify` is False) or is invalid.
    """
    missing = [folder / file_name for file_name in IDX_FILE_NAMES if not (folder / file_name).is_file()]
    if missing:
        listed = "\n  ".join(str(path.absolute()) for path in missing)
        raise DataError(
            f"{name} files not found:\n  {listed}\n"
            f"Download them with download=True (--download on the command line), or copy the "
            f"official files {', '.join(IDX_FILE_NAMES)} into {folder.absolute()}."
        )

    arrays = {}
    for file_name in IDX_FILE_NAMES:
        path = folder / file_name
        data = read_file_bytes(path)
        if verify:
            verify_md5(name, path, data)
        arrays[file_name] = decode_idx(data, path)

    check_idx_pair(arrays[TRAIN_IMAGES], arrays[TRAIN_LABELS], folder / TRAIN_IMAGES, folder / TRAIN_LABELS)
    check_idx_pair(arrays[TEST_IMAGES], arrays[TEST_LABELS], folder / TEST_IMAGES, folder / TEST_LABELS)
    train_size = arrays[TRAIN_IMAGES].shape[1:]
    test_size = arrays[TEST_IMAGES].shape[1:]
    if train_size != test_size:
        raise DataError(
            f"image sizes differ: {folder / TRAIN_IMAGES} has {train_size[0]}x{train_size[1]} pixels, "
            f"{folder / TEST_IMAGES} has {test_size[0]}x{test_size[1]}"
        )
    return arrays
