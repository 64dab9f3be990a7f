"""Checkpoints: the whole state of a training run in one safetensors file.

A checkpoint stores nested state (dicts, lists, tuples, numbers, strings and tensors, such as
the network's and the learning rule's `state_dict()`) in one safetensors file. Every tensor
is a safetensors entry named by its path in the state (`network/hidden.0.weight`). The rest of
the structure is JSON in the file's metadata, where each tensor appears as a reference
`{"tensor": NAME}`. A SHA-256 digest of that JSON and of all tensor bytes, also in the
metadata, detects corruption that leaves the file's layout intact.

Reading never unpickles and never calls `torch.load`: safetensors parses only a JSON header
and raw tensor bytes, and the JSON is decoded into plain containers.

Files go to `RUN/checkpoints/batch-NNNNNNNNN.safetensors` (NNNNNNNNN counts the minibatches
trained) through an atomic write. After each save, only the newest `KEEP_CHECKPOINTS` stay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from microglia.errors import CheckpointError
from microglia.training.files import atomic_write_bytes, remove_temporary_files, sort_metadata

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "microglia.checkpoint"
WEIGHTS_FORMATS = ("microglia.SpikingMLP", "microglia.ReLUMLP")
"""Format tags of final weights files: spiking networks, and the ReLU MLPs of `ann` runs."""
FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
KEEP_CHECKPOINTS = 2
"""Checkpoints kept on disk: the newest and the one before it, the fallback if the newest is damaged."""

_NAME_PATTERN = re.compile(r"batch-(\d{9})\.safetensors")


def checkpoint_path(run_dir: Path, batches_done: int) -> Path:
    """Return the path of the checkpoint taken after `batches_done` minibatches."""
    return Path(run_dir) / CHECKPOINT_DIR / f"batch-{batches_done:09d}.safetensors"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Return the run's checkpoint files, newest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    numbered = []
    for path in folder.iterdir():
        match = _NAME_PATTERN.fullmatch(path.name)
        if match:
            numbered.append((int(match.group(1)), path))
    return [path for _, path in sorted(numbered, reverse=True)]


def save_checkpoint(run_dir: Path, batches_done: int, state: dict[str, Any]) -> Path:
    """Write `state` as the checkpoint after `batches_done` minibatches, then drop older ones.

    The new file is complete on disk (fsync, rename) before any older checkpoint is removed.
    """
    path = checkpoint_path(run_dir, batches_done)
    atomic_write_bytes(path, encode_checkpoint(state, CHECKPOINT_FORMAT))
    for old in list_checkpoints(run_dir)[KEEP_CHECKPOINTS:]:
        old.unlink(missing_ok=True)
    return path


def load_newest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """Read the newest valid checkpoint of a run; return None when the run has none.

    A damaged newer checkpoint (truncated, corrupted) is skipped with a warning.

    Raises:
        CheckpointError: checkpoint files exist, but none of them can be read.
    """
    remove_temporary_files(Path(run_dir) / CHECKPOINT_DIR)
    paths = list_checkpoints(run_dir)
    failures = []
    for path in paths:
        try:
            return path, read_checkpoint(path)
        except CheckpointError as error:
            logger.warning("skipping damaged checkpoint: %s", error)
            failures.append(str(error))
    if failures:
        raise CheckpointError(f"no readable checkpoint in {Path(run_dir) / CHECKPOINT_DIR}: " + "; ".join(failures))
    return None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` and return its state."""
    return decode_checkpoint(read_file(path), path, CHECKPOINT_FORMAT)


def encode_checkpoint(state: dict[str, Any], file_format: str) -> bytes:
    """Serialize nested `state` to safetensors bytes with its structure and digest as metadata."""
    tensors: dict[str, torch.Tensor] = {}
    structure = json.dumps(_encode(state, "", tensors))
    metadata = {
        "format": file_format,
        "version": str(FORMAT_VERSION),
        "structure": structure,
        "sha256": _digest(structure, tensors),
    }
    return sort_metadata(save_safetensors(tensors, metadata=metadata))


def decode_checkpoint(data: bytes, path: Path, file_format: str) -> dict[str, Any]:
    """Parse safetensors bytes written by `encode_checkpoint`; raise CheckpointError if they are not."""
    tensors, metadata = parse_safetensors(data, path)
    if metadata.get("format") != file_format:
        raise CheckpointError(f"{path} is not a microglia checkpoint (format {metadata.get('format')!r})")
    if metadata.get("version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path} has checkpoint version {metadata.get('version')!r}; this microglia reads version {FORMAT_VERSION}"
        )
    if "structure" not in metadata or metadata.get("sha256") != _digest(metadata["structure"], tensors):
        raise CheckpointError(f"{path} is corrupted: its contents do not match the stored SHA-256 digest")
    try:
        structure = json.loads(metadata["structure"])
        return _decode(structure, tensors)
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path} has an invalid state structure: {error}") from None


def read_file(path: Path) -> bytes:
    """Return the bytes of a checkpoint or weights file; raise CheckpointError if it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint or weights file not found: {path}") from None
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror}") from None


def parse_safetensors(data: bytes, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse safetensors bytes into tensors and the metadata strings, without executing any code."""
    try:
        tensors = load_safetensors(data)
    except SafetensorError as error:
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({error}); it may be truncated or of another format"
        ) from None

    # the header was validated by safetensors: 8 bytes of length, then JSON
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_length])
    metadata = header.get("__metadata__") or {}
    return tensors, metadata


def load_weights(path: Path, network: torch.nn.Module) -> None:
    """Load network weights from a weights file or a checkpoint into `network`, after checking them.

    Args:
        path: `weights.safetensors` of a run, or a checkpoint (its `network/` tensors are used).
        network: the network built from the run's configuration.

    Raises:
        CheckpointError: the file is missing, not safetensors, damaged, or from another network shape.
    """
    data = read_file(path)
    tensors, metadata = parse_safetensors(data, path)
    found = metadata.get("format")
    expected = weights_format(network)

    if found == CHECKPOINT_FORMAT:
        tensors = decode_checkpoint(data, path, CHECKPOINT_FORMAT)["network"]
    elif found in WEIGHTS_FORMATS and found != expected:
        raise CheckpointError(
            f"{path} contains the weights of a {found.removeprefix('microglia.')}, but this run's configuration "
            f"builds a {expected.removeprefix('microglia.')}; evaluate it with the run it came from"
        )
    elif found != expected:
        raise CheckpointError(f"{path} is a safetensors file but contains no microglia weights (format {found!r})")

    check_network_tensors(tensors, network, path)
    network.load_state_dict(tensors)


def weights_format(network: torch.nn.Module) -> str:
    """Return the format tag of a weights file that contains `network`: `microglia.` and its class name."""
    tag = f"microglia.{type(network).__name__}"
    if tag not in WEIGHTS_FORMATS:
        raise TypeError(f"no weights format for {type(network).__name__}; expected one of {WEIGHTS_FORMATS}")
    return tag


def check_network_tensors(tensors: dict[str, torch.Tensor], network: torch.nn.Module, path: Path) -> None:
    """Raise CheckpointError unless `tensors` has exactly the names, shapes and dtypes of `network`'s state.

    Floating-point values must also be finite, and synapse masks 0 or 1.
    """
    expected = network.state_dict()
    sizes = "-".join(str(size) for size in getattr(network, "sizes", []))
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit the network {sizes} of this run: missing {missing or 'nothing'}, "
            f"unexpected {unexpected or 'nothing'}; it was written for another network"
        )
    for name, tensor in expected.items():
        saved = tensors[name]
        if saved.shape != tensor.shape:
            raise CheckpointError(
                f"{path} does not fit the network {sizes} of this run: {name} has shape {list(saved.shape)}, "
                f"expected {list(tensor.shape)}; it was written for another network shape"
            )
        if saved.dtype != tensor.dtype:
            raise CheckpointError(f"{path}: {name} has dtype {saved.dtype}, expected {tensor.dtype}")
        if saved.is_floating_point() and not torch.isfinite(saved).all():
            raise CheckpointError(
                f"{path}: {name} contains NaN or infinite values; the file is damaged or comes from a diverged run"
            )
        if name.endswith("mask") and not ((saved == 0) | (saved == 1)).all():
            raise CheckpointError(f"{path}: synapse mask {name} contains values other than 0 and 1; the file is damaged")


def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Turn nested state into JSON-compatible structure, moving tensors into `tensors`."""
    if isinstance(value, torch.Tensor):
        name = path or "tensor"
        if name in tensors:
            raise ValueError(f"two tensors in the state map to the checkpoint name {name!r}")
        # a clone owns its memory, so safetensors never sees shared storage
        tensors[name] = value.detach().cpu().clone().contiguous()
        return {"tensor": name}
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"checkpoint state key at {path or '/'} must be str or int, got {key!r}")
            items.append([key, _encode(item, f"{path}/{key}" if path else str(key), tensors)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_encode(item, f"{path}/{index}", tensors) for index, item in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint state at {path or '/'} has unsupported type {type(value).__name__}")


def _decode(structure: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild the nested state from the JSON structure and the tensors; raise ValueError if malformed."""
    if structure is None or isinstance(structure, (bool, int, float, str)):
        return structure
    if not isinstance(structure, dict) or len(structure) != 1:
        raise ValueError(f"unexpected element {str(structure)[:80]}")
    (kind, content), = structure.items()
    if kind == "tensor":
        if content not in tensors:
            raise ValueError(f"tensor {content!r} is referenced but not stored")
        return tensors[content]
    if kind in ("list", "tuple") and isinstance(content, list):
        items = [_decode(item, tensors) for item in content]
        return items if kind == "list" else tuple(items)
    if kind == "dict" and isinstance(content, list):
        result = {}
        for pair in content:
            if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], (str, int)):
                raise ValueError(f"invalid dict entry {str(pair)[:80]}")
            result[pair[0]] = _decode(pair[1], tensors)
        return result
    raise ValueError(f"unknown element kind {kind!r}")


def _digest(structure: str, tensors: dict[str, torch.Tensor]) -> str:
    """Return the SHA-256 of the structure JSON and of every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256(structure.encode())
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
