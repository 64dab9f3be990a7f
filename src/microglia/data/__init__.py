"""Datasets for training: scikit-learn digits, MNIST, Fashion-MNIST and user arrays.

`load_dataset` returns a `Dataset` with train, validation and test `Split`s. Each split
contains float32 images [N, F] and int64 labels [N].
"""

from microglia.data.arrays import load_arrays
from microglia.data.datasets import DATASET_NAMES, load_dataset
from microglia.data.idx import load_idx_pair, read_idx
from microglia.data.splits import Dataset, Split
from microglia.errors import DataError

__all__ = [
    "DATASET_NAMES",
    "DataError",
    "Dataset",
    "Split",
    "load_arrays",
    "load_dataset",
    "load_idx_pair",
    "read_idx",
]
