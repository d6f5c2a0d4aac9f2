"""Configuration presets as frozen (hashable) dataclasses: ``cpu``, ``paper`` and ``smoke``.

``get_preset(name, **overrides)`` returns a :class:`Config` whose three parts are
:class:`SystemConfig` (K, N, P, sigma2, Pc), :class:`ModelConfig` (the BERT size) and
:class:`TrainConfig` (optimiser, epochs, data set size, loss weights). An override is addressed by its
field name (``get_preset("cpu", features=64, epochs=3)``); unknown names and bad values raise
``ValueError``.

* ``paper`` (Sec. VI-A): F = 1024, 12 encoder blocks, 16 heads, Adam, lr 2e-4 with cosine decay,
  batch 32, 100 epochs, 80,000 labelled samples per power level.
* ``cpu``: a small BERT (F = 128, 3 blocks, 4 heads) and 12,000 labelled samples that trains to a useful
  result on a 2-core laptop in minutes (README and ``experiments/bert_pretrain_cpu.py`` for the
  measured curves). The quickstart and the experiments train it for fixed step budgets
  (:data:`jaxbeam.jobs.quickstart.STEPS_PER_MODEL`, ``experiments.common.BUDGETS``).
* ``smoke``: a tiny model and data set for tests (seconds).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxbeam.core.utility import TASKS


def _positive(obj, *names):
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            raise ValueError(f"{name} must be a positive number; got {v!r}")


@dataclasses.dataclass(frozen=True)
class SystemConfig:
    """The MU-MISO system: K users, N antennas, power budgets P [W], noise sigma2 [W], circuit power Pc [W]."""

    K: int = 6
    N: int = 12
    P: tuple[float, ...] = (1.0,)
    sigma2: float = 0.1
    Pc: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "P", tuple(float(p) for p in (self.P if hasattr(self.P, "__iter__") else (self.P,))))
        _positive(self, "K", "N", "sigma2", "Pc")
        if not self.P or min(self.P) <= 0:
            raise ValueError(f"P must be a non-empty tuple of positive powers; got {self.P!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Model size: token width F, encoder blocks L, heads C, FFN ratio, compute dtype name; and UBERT's
    output layer (``ubert_head``, :class:`jaxbeam.models.UBERT`'s ``head``: ``"balanced"`` by default, the
    optimal beamforming structure with a learned gate towards max-min powers; ``"structured"`` without the
    gate; ``"element"`` for eqs. 27-28 as written, which measured no better than MRT)."""

    features: int = 128
    num_layers: int = 3
    num_heads: int = 4
    mlp_ratio: int = 4
    dtype: str = "float32"
    ubert_head: str = "balanced"

    def __post_init__(self):
        _positive(self, "features", "num_layers", "num_heads", "mlp_ratio")
        if self.features % self.num_heads:
            raise ValueError(f"features ({self.features}) must be divisible by num_heads ({self.num_heads})")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be 'float32', 'bfloat16' or 'float16'; got {self.dtype!r}")
        if self.ubert_head not in ("element", "structured", "balanced"):
            raise ValueError(f"ubert_head must be 'element', 'structured' or 'balanced'; got {self.ubert_head!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training: Adam with cosine decay (Sec. VI-A3), data set size, loss, checkpoint/log cadence.

    ``samples_per_power`` labelled samples are made per power level and split 8:1:1. ``utility`` is the
    task; ``supervised`` picks eq. 17 (with ``lambda1``, ``lambda2``) or eq. 18.
    """

    utility: str = "sr"
    supervised: bool = True
    lambda1: float = 1.0
    lambda2: float = 0.05
    similarity: str = "matrix"
    learning_rate: float = 2e-4
    batch_size: int = 32
    eval_batch_size: int = 1024
    epochs: int = 100
    samples_per_power: int = 80_000
    steps_per_epoch: int = 0  # channels drawn on the fly (unsupervised): steps per "epoch"; 0 = from data
    checkpoint_every: int = 500  # steps; a checkpoint is also written at the end of every epoch
    log_every: int = 50  # steps between JSONL records
    seed: int = 0

    def __post_init__(self):
        if self.utility not in TASKS:
            raise ValueError(f"utility must be one of {TASKS}; got {self.utility!r}")
        _positive(self, "learning_rate", "batch_size", "eval_batch_size", "epochs", "samples_per_power")
        _positive(self, "checkpoint_every", "log_every")
        if self.steps_per_epoch < 0:
            raise ValueError(f"steps_per_epoch must be >= 0; got {self.steps_per_epoch}")
        if self.lambda1 < 0 or self.lambda2 < 0:
            raise ValueError(f"lambda1 and lambda2 must be >= 0; got {self.lambda1}, {self.lambda2}")


@dataclasses.dataclass(frozen=True)
class Config:
    """A complete preset: system, model and training configuration."""

    name: str
    system: SystemConfig = SystemConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return cls(
            name=d["name"],
            system=SystemConfig(**d["system"]),
            model=ModelConfig(**d["model"]),
            train=TrainConfig(**d["train"]),
        )


PRESETS = {
    "paper": Config(
        "paper",
        SystemConfig(K=6, N=12, P=(1.0, 2.0, 3.0)),
        ModelConfig(features=1024, num_layers=12, num_heads=16),
        TrainConfig(learning_rate=2e-4, batch_size=32, epochs=100, samples_per_power=80_000),
    ),
    "cpu": Config(
        "cpu",
        SystemConfig(K=6, N=12, P=(1.0,)),
        ModelConfig(features=128, num_layers=3, num_heads=4),
        TrainConfig(learning_rate=1e-3, batch_size=64, epochs=40, samples_per_power=12_000, checkpoint_every=1000),
    ),
    "smoke": Config(
        "smoke",
        SystemConfig(K=3, N=4, P=(1.0,)),
        ModelConfig(features=16, num_layers=2, num_heads=2),
        TrainConfig(
            learning_rate=1e-3, batch_size=16, eval_batch_size=64, epochs=2, samples_per_power=160, log_every=2
        ),
    ),
}


def get_preset(name: str, **overrides) -> Config:
    """The preset ``name`` (``"cpu"``, ``"paper"``, ``"smoke"``) with fields replaced by ``overrides``.

    Raises:
      ValueError: unknown preset or field name, or an invalid value.
    """
    if name not in PRESETS:
        raise ValueError(f"name must be one of {tuple(PRESETS)}; got {name!r}")
    cfg = PRESETS[name]
    parts = {"system": cfg.system, "model": cfg.model, "train": cfg.train}
    changes: dict[str, dict] = {k: {} for k in parts}
    for key, value in overrides.items():
        owners = [k for k, part in parts.items() if key in {f.name for f in dataclasses.fields(part)}]
        if not owners:
            fields = sorted(f.name for part in parts.values() for f in dataclasses.fields(part))
            raise ValueError(f"unknown config field {key!r}; known fields: {fields}")
        changes[owners[0]][key] = value
    return dataclasses.replace(
        cfg, **{k: dataclasses.replace(part, **changes[k]) for k, part in parts.items() if changes[k]}
    )
