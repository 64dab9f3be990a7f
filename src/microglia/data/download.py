"""Official file names, checksums and mirrors of MNIST and Fashion-MNIST, and their download."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

from microglia.errors import DataError

logger = logging.getLogger(__name__)

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# md5 of each official .gz file, as the dataset authors published them.
OFFICIAL_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
        TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
        TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

# Base URLs, tried in order. Every download is checked against OFFICIAL_MD5, so a
# plain-HTTP mirror cannot substitute other data.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

# A base URL (file:// works too) that replaces the mirror list of every dataset.
MIRROR_ENV_VAR = "MICROGLIA_MIRROR"

DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK_BYTES = 1 << 20


class _ChecksumMismatchError(Exception):
    """A downloaded file does not have the expected md5."""


def md5_hex(data: bytes) -> str:
    """Return the md5 of `data` as 32 lowercase hex digits."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def verify_md5(dataset: str, path: Path, data: bytes) -> None:
    """Raise DataError unless `data`, the content of `path`, has the official md5 of that file."""
    expected = OFFICIAL_MD5[dataset][path.name]
    actual = md5_hex(data)
    if actual != expected:
        raise DataError(
            f"checksum mismatch for {path}: expected md5 {expected}, got {actual}. The file is "
            f"corrupted or is not the official {dataset} release. Delete it and download it "
            f"again (download=True, or --download on the command line) or copy the official file."
        )


def mirror_urls(dataset: str) -> tuple[str, ...]:
    """Return the base URLs to download `dataset` from: $MICROGLIA_MIRROR if set, else MIRRORS."""
    override = os.environ.get(MIRROR_ENV_VAR, "").strip()
    if override:
        return (override,)
    return MIRRORS[dataset]


def download_missing_files(dataset: str, folder: Path) -> None:
    """Download the files of `dataset` that are missing from `folder`, checking each md5.

    Each file goes to a temporary file in `folder` and is renamed into place only after
    its md5 matches, so an interrupted or bad download never leaves a file under the
    final name. Existing files are left untouched. Raises DataError that lists the
    files, the folder and the URLs tried when some file could not be downloaded.
    """
    missing = [name for name in IDX_FILE_NAMES if not (folder / name).exists()]
    if not missing:
        return

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"failed to create the data folder {folder}: {error}") from error

    mirrors = mirror_urls(dataset)
    failed: list[str] = []
    failures: list[str] = []
    for name in missing:
        expected_md5 = OFFICIAL_MD5[dataset][name]
        for base_url in mirrors:
            url = base_url.rstrip("/") + "/" + name
            try:
                _download_file(url, folder / name, expected_md5)
            except (OSError, http.client.HTTPException, ValueError, _ChecksumMismatchError) as error:
                # OSError covers urllib.error.URLError, timeouts and local file errors.
                # urllib raises ValueError for a URL that it cannot parse.
                logger.warning("Download of %s failed: %s", url, error)
                failures.append(f"{url}: {error}")
                continue
            logger.info("Downloaded %s to %s", url, folder / name)
            break
        else:
            failed.append(name)

    if failed:
        tried = "\n  ".join(failures)
        raise DataError(
            f"download of {dataset} failed: {', '.join(failed)} still missing from {folder}.\n"
            f"Mirrors tried: {', '.join(mirrors)}\n  {tried}\n"
            f"Copy the official files into {folder}, or set {MIRROR_ENV_VAR} to a base URL "
            f"that serves them."
        )


def _download_file(url: str, destination: Path, expected_md5: str) -> None:
    """Stream `url` into a temporary file next to `destination`, check its md5 and rename it."""
    descriptor, temporary_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    temporary_path = Path(temporary_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(descriptor, "wb") as output:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                while chunk := response.read(_CHUNK_BYTES):
                    digest.update(chunk)
                    output.write(chunk)
        actual_md5 = digest.hexdigest()
        if actual_md5 != expected_md5:
            raise _ChecksumMismatchError(f"checksum mismatch: expected md5 {expected_md5}, got {actual_md5}")
        os.replace(temporary_path, destination)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise
