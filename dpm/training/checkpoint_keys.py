"""What a checkpoint depends on: its key, the key's hash, and a dataset's fingerprint.

A :class:`~dpm.training.checkpoint.CheckpointStore` is valid for one *key*: a
JSON-able dict of everything its checkpoints depend on (data fingerprint,
class, options, seed, ...).  Keys are compared through :func:`key_hash`, the
SHA-256 of their canonical JSON (:func:`canonical_json`) together with the
checkpoint format and its version; :func:`describe_key_difference` says in
one line why an old key does not match.  :func:`dataset_fingerprint` is a
cheap fingerprint of a dataset folder's split and annotation files.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_FORMAT_VERSION", "canonical_json", "key_hash",
           "describe_key_difference", "dataset_fingerprint"]

CHECKPOINT_FORMAT = "dpm-checkpoints"
CHECKPOINT_FORMAT_VERSION = 1


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable (put arrays in 'arrays=')")


def canonical_json(obj) -> str:
    """``obj`` as compact JSON with sorted keys (numpy scalars, paths, tuples and sets as plain JSON)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def key_hash(key_fields: Mapping) -> str:
    """SHA-256 (hex) of the canonical JSON of ``key_fields`` plus the format version."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_FORMAT_VERSION, "key": key_fields}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def dataset_fingerprint(root, patterns=("ImageSets/Main/*.txt", "Annotations/*.xml")) -> dict:
    """A cheap fingerprint of a dataset's split and annotation files.

    Parameters
    ----------
    root : path
        Dataset folder (a VOC year folder).
    patterns : sequence of str
        Glob patterns, relative to ``root``, of the files whose names and
        contents are hashed (images are not read).

    Returns
    -------
    dict
        ``{"path": absolute root, "files": count, "sha256": digest}``.

    Raises
    ------
    FileNotFoundError
        ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such dataset directory")
    h = hashlib.sha256()
    count = 0
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if not path.is_file():
                continue
            h.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
            count += 1
    return {"path": str(root.resolve()), "files": count, "sha256": h.hexdigest()}


def _flatten(obj, prefix=""):
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def describe_key_difference(old: Mapping, new: Mapping, limit: int = 6) -> str:
    """The fields (dotted paths) in which two keys differ, old -> new, at most ``limit`` of them, on one line."""
    a, b = _flatten(json.loads(canonical_json(old))), _flatten(json.loads(canonical_json(new)))
    diffs = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            diffs.append(f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}")
    if len(diffs) > limit:
        diffs = diffs[:limit] + [f"... {len(diffs) - limit} more"]
    return "; ".join(diffs) or "format changed"
