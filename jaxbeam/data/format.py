"""Label data sets: the on-disk format, loading, saving and the 8:1:1 split (Sec. VI-A2).

Format (a directory; every array loads with plain ``numpy.load``)::

    DIR/meta.json   solver, tolerance, seed, sigma2, P levels, Pc, K, N, utility, channel source, dtype,
                    label-solver version, package version, mean label utility per power level, number of
                    samples, format version, and the sha256 of every array file (``"sha256"``)
    DIR/H.npy       complex64 (S, K, N)  channels
    DIR/W.npy       complex64 (S, K, N)  label beamformers, ||W||_F^2 <= P
    DIR/P.npy       float32   (S,)       power budget of each sample [W]
    DIR/U.npy       float32   (S,)       the label's utility (SR, MR or EE)
    DIR/split.npy   int8      (S,)       0 = train, 1 = validation, 2 = test (8:1:1, deterministic)

Integrity: :func:`save_labels` records each array file's sha256 in ``meta.json`` (written last, atomically),
and :func:`load_labels` checks it (``verify=True``): a truncated or altered file raises ``ValueError`` naming
it, never silently wrong data.

Identity: :func:`label_identity` is the part of ``meta.json`` that determines the labels (utility, solver,
tolerance, K, N, P levels, samples, seed, chunk size, sigma2, Pc, channel source, dtype, label-solver version);
:func:`fingerprint` is a short hash of any such dict's canonical JSON, the suffix of cache paths, and
:func:`check_identity` compares a stored identity with an expected one, naming the first differing field.

This module is the training shell's side of the data flow; the functional core never imports it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxbeam.data.streams import stream

FORMAT = "jaxbeam-labels/1"
SPLITS = {"train": 0, "val": 1, "test": 2}
_ARRAYS = ("H", "W", "P", "U", "split")
IDENTITY_FIELDS = (
    "utility",
    "solver",
    "tol",
    "K",
    "N",
    "P",
    "samples_per_level",
    "seed",
    "chunk_size",
    "sigma2",
    "Pc",
    "channel",
    "dtype",
    "label_version",
)
"""The ``meta.json`` fields that determine a label set's content (timing, versions of jax etc. do not)."""


def fingerprint(fields: dict[str, Any], length: int = 12) -> str:
    """The first ``length`` hex digits of the sha256 of ``fields``' canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def label_identity(meta: dict[str, Any]) -> dict[str, Any]:
    """The determining fields (:data:`IDENTITY_FIELDS`) of a label set's ``meta`` (missing ones as None)."""
    return {k: meta.get(k) for k in IDENTITY_FIELDS}


def check_identity(stored: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    """Raise ``ValueError`` naming every field where ``stored`` differs from ``expected`` (``what``: the path)."""
    keys = list(expected) + [k for k in stored if k not in expected]
    diff = {k: (stored.get(k), expected.get(k)) for k in keys if _canon(stored.get(k)) != _canon(expected.get(k))}
    if diff:
        fields = "; ".join(f"{k}: stored {a!r}, expected {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"{what} was made with other settings ({fields}); use another directory or delete it")


def _canon(v):
    return json.loads(json.dumps(v, sort_keys=True, default=str))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class LabelSet:
    """An in-memory label data set (numpy arrays; see the module docstring for shapes)."""

    H: np.ndarray
    W: np.ndarray
    P: np.ndarray
    U: np.ndarray
    split_ids: np.ndarray
    meta: dict[str, Any]

    def __post_init__(self):
        S = self.H.shape[0]
        if self.H.ndim != 3 or not np.iscomplexobj(self.H):
            raise ValueError(f"H must be complex (S, K, N); got {self.H.dtype} {self.H.shape}")
        if self.W.shape != self.H.shape or not np.iscomplexobj(self.W):
            raise ValueError(f"W must be complex with the shape of H {self.H.shape}; got {self.W.dtype} {self.W.shape}")
        for name in ("P", "U", "split_ids"):
            if getattr(self, name).shape != (S,):
                raise ValueError(f"{name} must have shape ({S},); got {getattr(self, name).shape}")

    def __len__(self) -> int:
        return self.H.shape[0]

    @property
    def K(self) -> int:
        return self.H.shape[1]

    @property
    def N(self) -> int:
        return self.H.shape[2]

    def subset(self, index) -> LabelSet:
        """The samples selected by ``index`` (a boolean mask or integer indices)."""
        return dataclasses.replace(
            self, H=self.H[index], W=self.W[index], P=self.P[index], U=self.U[index], split_ids=self.split_ids[index]
        )

    def split(self, name: str) -> LabelSet:
        """The ``"train"``, ``"val"`` or ``"test"`` part."""
        if name not in SPLITS:
            raise ValueError(f"split name must be one of {tuple(SPLITS)}; got {name!r}")
        return self.subset(self.split_ids == SPLITS[name])


def split_ids(n: int, seed: int) -> np.ndarray:
    """Deterministic 8:1:1 assignment of ``n`` samples to train (0) / validation (1) / test (2).

    A seeded permutation puts the first ``round(0.8 n)`` samples in train and the next
    ``round(0.1 n)`` in validation; the rest is test. Same ``(n, seed)``, same split.
    """
    n_train, n_val = round(0.8 * n), round(0.1 * n)
    ids = np.full(n, 2, np.int8)
    order = stream("split", seed).permutation(n)
    ids[order[:n_train]] = 0
    ids[order[n_train : n_train + n_val]] = 1
    return ids


def save_labels(path: str | os.PathLike, labels: LabelSet) -> Path:
    """Write ``labels`` to directory ``path`` in the format above (atomically per file, ``meta.json`` last).

    A ``meta.json`` already there is removed first, so a set is finished exactly when ``meta.json`` exists.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "meta.json").unlink(missing_ok=True)
    arrays = {"H": labels.H, "W": labels.W, "P": labels.P, "U": labels.U, "split": labels.split_ids}
    sums = {}
    for name, arr in arrays.items():
        tmp = path / f".{name}.npy.tmp"
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr))
            f.flush()
            os.fsync(f.fileno())
        sums[f"{name}.npy"] = file_sha256(tmp)
        os.replace(tmp, path / f"{name}.npy")
    meta = {"format": FORMAT, **{k: v for k, v in labels.meta.items() if k != "sha256"}, "sha256": sums}
    tmp = path / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, path / "meta.json")
    return path


def load_labels(path: str | os.PathLike, *, mmap: bool = False, verify: bool = True) -> LabelSet:
    """Read a label data set written by :func:`save_labels` (or ``jaxbeam label``).

    With ``verify`` (default) every array file is checked against the sha256 in ``meta.json``.

    Raises:
      FileNotFoundError: ``path`` holds no ``meta.json``.
      ValueError: unreadable ``meta.json``, another format, or an array file that is missing, truncated,
        altered (checksum) or of the wrong shape; the message names the file.
    """
    path = Path(path)
    if not (path / "meta.json").is_file():
        raise FileNotFoundError(f"{path} is not a jaxbeam label data set (no meta.json)")
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path / 'meta.json'} is corrupted ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path}: unsupported format {got!r}; expected {FORMAT!r}")
    sums = meta.get("sha256") or {}
    arrays = {}
    for name in _ARRAYS:
        file = path / f"{name}.npy"
        if not file.is_file():
            raise ValueError(f"{file} is missing from the label set")
        if verify and f"{name}.npy" in sums and file_sha256(file) != sums[f"{name}.npy"]:
            raise ValueError(f"{file} is corrupted or truncated (sha256 differs from meta.json)")
        try:
            arrays[name] = np.load(file, mmap_mode="r" if mmap else None)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f"{file} is corrupted or truncated ({e})") from None
    meta.pop("format")
    try:
        return LabelSet(
            H=arrays["H"], W=arrays["W"], P=arrays["P"], U=arrays["U"], split_ids=arrays["split"], meta=meta
        )
    except ValueError as e:
        raise ValueError(f"{path}: inconsistent array files ({e})") from None
