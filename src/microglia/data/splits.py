"""Dataset containers and the stratified split that draws validation and test sets."""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from microglia.errors import DataError

logger = logging.getLogger(__name__)

MAX_VALIDATION_FRACTION = 0.5


@dataclass(frozen=True)
class Split:
    """One part of a dataset: images [N, F] float32 and labels [N] int64.

    Image values are in [0, 1] for the built-in datasets and for uint8 user arrays.
    Float user arrays are kept as given.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.float32 or self.images.ndim != 2:
            raise DataError(
                f"Split images must be float32 with shape [N, F], "
                f"got {self.images.dtype} with shape {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.ndim != 1:
            raise DataError(
                f"Split labels must be int64 with shape [N], "
                f"got {self.labels.dtype} with shape {tuple(self.labels.shape)}"
            )
        if self.images.shape[0] != self.labels.shape[0]:
            raise DataError(
                f"Split has {self.images.shape[0]} images but {self.labels.shape[0]} labels"
            )

    def __len__(self) -> int:
        return self.labels.shape[0]


@dataclass(frozen=True)
class Dataset:
    """A dataset with train, validation and test splits that share `n_features` and `n_classes`."""

    name: str
    train: Split
    validation: Split
    test: Split
    n_features: int
    n_classes: int
    class_names: tuple[str, ...]


def check_validation_fraction(validation_fraction: float) -> None:
    """Raise DataError unless `validation_fraction` is a number in [0, 0.5]."""
    if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, numbers.Real):
        raise DataError(
            f"validation_fraction must be a number in [0, {MAX_VALIDATION_FRACTION}], "
            f"got {validation_fraction!r}"
        )
    if not 0.0 <= validation_fraction <= MAX_VALIDATION_FRACTION:
        raise DataError(
            f"validation_fraction must be in [0, {MAX_VALIDATION_FRACTION}], got {validation_fraction!r}"
        )


def check_seed(seed: int) -> None:
    """Raise DataError unless `seed` is a non-negative integer, as numpy.random.default_rng requires."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into a remaining part and a held-out part with the class proportions of `labels`.

    The held-out part has ceil(fraction * N) samples, as in scikit-learn's
    train_test_split, except that a product within 1e-9 above an integer is rounded
    down. Each class gets its proportional share rounded down, and the
    samples left over go to the classes with the largest remainders, so each class count
    is within 1 of its exact share. The samples of each class are drawn with
    numpy.random.default_rng(seed), so one seed always gives the same split. Unlike
    train_test_split, this also works for classes with a single sample.

    Returns (remaining, held_out): sorted int64 index arrays that together cover 0..N-1.
    """
    n_samples = len(labels)
    # The tolerance keeps float error from rounding an exact product up: 0.07 * 100 is
    # 7.000000000000001 in float64 and must give 7, not 8.
    n_held_out = min(n_samples, math.ceil(fraction * n_samples - 1e-9)) if fraction > 0 else 0

    # Group the sample indices by class, classes in ascending order.
    by_class = np.argsort(labels, kind="stable")
    classes, counts = np.unique(labels, return_counts=True)

    # Largest remainder allocation in exact integer arithmetic.
    shares = n_held_out * counts
    allocation = shares // max(n_samples, 1)
    remainders = shares % max(n_samples, 1)
    n_left_over = n_held_out - int(allocation.sum())
    # lexsort sorts by its last key first: largest remainder, then largest class, then class order.
    order = np.lexsort((np.arange(len(classes)), -counts, -remainders))
    allocation[order[:n_left_over]] += 1

    rng = np.random.default_rng(seed)
    held_out_parts = []
    start = 0
    for count, n_take in zip(counts, allocation):
        members = by_class[start : start + count]
        held_out_parts.append(rng.choice(members, size=int(n_take), replace=False))
        start += count

    is_held_out = np.zeros(n_samples, dtype=bool)
    if held_out_parts:
        is_held_out[np.concatenate(held_out_parts)] = True
    return np.flatnonzero(~is_held_out), np.flatnonzero(is_held_out)


def build_dataset(
    name: str,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    scale: float,
    n_classes: int,
    class_names: tuple[str, ...],
    validation_fraction: float,
    seed: int,
) -> Dataset:
    """Split off the validation set and convert to tensors.

    Images are arrays [N, ...] that are flattened to [N, F] and divided by `scale`.
    Labels are integer arrays [N].
    """
    remaining, held_out = stratified_split(train_labels, validation_fraction, seed)
    train = _make_split(train_images[remaining], train_labels[remaining], scale)
    validation = _make_split(train_images[held_out], train_labels[held_out], scale)
    test = _make_split(test_images, test_labels, scale)
    dataset = Dataset(
        name=name,
        train=train,
        validation=validation,
        test=test,
        n_features=train.images.shape[1],
        n_classes=n_classes,
        class_names=class_names,
    )
    logger.info(
        "Loaded %s: %d train, %d validation, %d test samples, %d features, %d classes",
        name,
        len(train),
        len(validation),
        len(test),
        dataset.n_features,
        n_classes,
    )
    return dataset


def _make_split(images: np.ndarray, labels: np.ndarray, scale: float) -> Split:
    """Flatten images [N, ...] to a float32 tensor [N, F] divided by `scale`, and labels to int64 [N]."""
    # An explicit feature count, because reshape(0, -1) fails for an empty split.
    n_features = int(np.prod(images.shape[1:]))
    flat = np.ascontiguousarray(images.reshape(len(images), n_features))
    # torch.from_numpy needs a writable array. Fancy indexing and astype return copies,
    # but a caller's array or a reshape view may be read-only.
    if not flat.flags.writeable:
        flat = flat.copy()
    tensor = torch.from_numpy(flat).to(torch.float32)
    if scale != 1.0:
        tensor = tensor.div_(scale)
    return Split(images=tensor, labels=torch.from_numpy(labels.astype(np.int64)))
