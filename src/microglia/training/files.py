"""Atomic file writes: a file appears complete under its name, or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file in the same folder, fsync it, and rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, _file_mode())
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def remove_temporary_files(folder: Path) -> None:
    """Delete temporary files that an atomic write left behind when its process was killed."""
    if not folder.is_dir():
        return
    for leftover in folder.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def _file_mode() -> int:
    """Return the permissions an ordinary new file gets (0o666 less the umask); mkstemp would give 0o600."""
    # NOTE: os.umask can only be read by setting it, so a file another thread creates in between ignores the umask.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk, so a completed rename survives a power loss."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Save tensors as safetensors, atomically (temporary file, fsync, rename).

    The same tensors and metadata always give the same bytes, so files can be compared by digest.
    """
    data = save({name: tensor.detach().contiguous() for name, tensor in tensors.items()}, metadata=metadata)
    atomic_write_bytes(path, sort_metadata(data))


def sort_metadata(data: bytes) -> bytes:
    """Return safetensors bytes with the metadata keys of the header in sorted order.

    safetensors writes the metadata map in hash-map order, which can change from one
    process to the next. Sorting keeps every key, value and tensor offset, so the header
    keeps its length.
    """
    length = int.from_bytes(data[:8], "little")
    raw = data[8 : 8 + length]
    header = json.loads(raw)
    if "__metadata__" not in header:
        return data

    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > length:
        raise ValueError(f"sorted safetensors header is longer than the original ({len(text)} > {length} bytes)")
    return data[:8] + text.ljust(length) + data[8 + length :]
