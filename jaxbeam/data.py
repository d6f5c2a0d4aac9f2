"""Label data sets: the on-disk format, loading, saving and the 8:1:1 split (Sec. VI-A2).

Format (a directory; every array loads with plain ``numpy.load``)::

    DIR/meta.json   solver, tolerance, seed, sigma2, P levels, Pc, K, N, utility, package version,
                    mean label utility per power level, number of samples, format version
    DIR/H.npy       complex64 (S, K, N)  channels
    DIR/W.npy       complex64 (S, K, N)  label beamformers, ||W||_F^2 <= P
    DIR/P.npy       float32   (S,)       power budget of each sample [W]
    DIR/U.npy       float32   (S,)       the label's utility (SR, MR or EE)
    DIR/split.npy   int8      (S,)       0 = train, 1 = validation, 2 = test (8:1:1, deterministic)

This module is the training shell's side of the data flow; the functional core never imports it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "jaxbeam-labels/1"
SPLITS = {"train": 0, "val": 1, "test": 2}
_ARRAYS = ("H", "W", "P", "U", "split")


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
    order = np.random.default_rng([seed, 0x5B117]).permutation(n)
    ids[order[:n_train]] = 0
    ids[order[n_train : n_train + n_val]] = 1
    return ids


def save_labels(path: str | os.PathLike, labels: LabelSet) -> Path:
    """Write ``labels`` to directory ``path`` in the format above (atomically per file)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays = {"H": labels.H, "W": labels.W, "P": labels.P, "U": labels.U, "split": labels.split_ids}
    for name, arr in arrays.items():
        tmp = path / f".{name}.npy.tmp"
        with open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, path / f"{name}.npy")
    meta = {"format": FORMAT, **labels.meta}
    tmp = path / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, path / "meta.json")
    return path


def load_labels(path: str | os.PathLike, *, mmap: bool = False) -> LabelSet:
    """Read a label data set written by :func:`save_labels` (or ``jaxbeam label``)."""
    path = Path(path)
    if not (path / "meta.json").is_file():
        raise FileNotFoundError(f"{path} is not a jaxbeam label data set (no meta.json)")
    meta = json.loads((path / "meta.json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported format {meta.get('format')!r}; expected {FORMAT!r}")
    arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r" if mmap else None) for name in _ARRAYS}
    meta.pop("format")
    return LabelSet(H=arrays["H"], W=arrays["W"], P=arrays["P"], U=arrays["U"], split_ids=arrays["split"], meta=meta)
