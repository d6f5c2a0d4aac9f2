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
    """Model size: token width F, encoder blocks L, heads C, FFN ratio, compute dtype name (``"bfloat16"``:
    mixed precision, the models' matmuls in bfloat16 with float32 parameters and optimizer state); and UBERT's
    output layer (``ubert_head``, :class:`jaxbeam.models.UBERT`'s ``head``: ``"balanced"`` by default, the
    optimal beamforming structure with a learned gate towards max-min powers; ``"structured"`` without the
    gate; ``"element"`` for eqs. 27-28 as written, which measured no better than MRT); ``domain`` the channel
    view of the tokens, ``"spatial"`` (the paper) or ``"angle"`` (the DFT over the antennas, paper 003 eq. 18);
    ``power`` the models' power constraint, ``"total"`` (eq. 15) or ``"antenna"`` (``P / N`` per antenna)."""

    features: int = 128
    num_layers: int = 3
    num_heads: int = 4
    mlp_ratio: int = 4
    dtype: str = "float32"
    ubert_head: str = "balanced"
    domain: str = "spatial"
    power: str = "total"

    def __post_init__(self):
        _positive(self, "features", "num_layers", "num_heads", "mlp_ratio")
        if self.features % self.num_heads:
            raise ValueError(f"features ({self.features}) must be divisible by num_heads ({self.num_heads})")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be 'float32', 'bfloat16' or 'float16'; got {self.dtype!r}")
        if self.ubert_head not in ("element", "structured", "balanced"):
            raise ValueError(f"ubert_head must be 'element', 'structured' or 'balanced'; got {self.ubert_head!r}")
        if self.domain not in ("spatial", "angle"):
            raise ValueError(f"domain must be 'spatial' or 'angle'; got {self.domain!r}")
        if self.power not in ("total", "antenna"):
            raise ValueError(f"power must be 'total' or 'antenna'; got {self.power!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training: Adam with cosine decay (Sec. VI-A3), data set size, loss, checkpoint/log cadence.

    ``samples_per_power`` labelled samples are made per power level and split 8:1:1. ``utility`` is the
    task; ``supervised`` picks eq. 17 (with ``lambda1``, ``lambda2``) or eq. 18. ``steps_per_call``
    optimizer steps run per dispatch (a ``lax.scan``; the same parameters to float32 round-off; default 1:
    1.03-1.15x faster at 4-64 on 2 CPU cores, ``benchmarks/train_chunk.py``; worth more on an accelerator).
    ``on_device`` keeps a labelled training set on the devices (:class:`jaxbeam.train.ArraySource`
    ``on_device=True``: indices per step, augmentation drawn on the device) and draws fine-tuning channels
    there (:class:`jaxbeam.train.ChannelSource`); BERT and its fine-tuning only. ``task_weighting`` weighs
    UBERT's task losses: ``"equal"`` (eq. 29) or ``"dwa"`` (Dynamic Weight Average with temperature
    ``dwa_temperature``, paper 003 Sec. IV-D, :mod:`jaxbeam.train.task_weighting`).
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
    steps_per_call: int = 1
    seed: int = 0
    on_device: bool = False
    task_weighting: str = "equal"
    dwa_temperature: float = 2.0

    def __post_init__(self):
        if self.utility not in TASKS:
            raise ValueError(f"utility must be one of {TASKS}; got {self.utility!r}")
        _positive(self, "learning_rate", "batch_size", "eval_batch_size", "epochs", "samples_per_power")
        _positive(self, "checkpoint_every", "log_every", "steps_per_call")
        if self.steps_per_epoch < 0:
            raise ValueError(f"steps_per_epoch must be >= 0; got {self.steps_per_epoch}")
        if self.task_weighting not in ("equal", "dwa"):
            raise ValueError(f"task_weighting must be 'equal' or 'dwa'; got {self.task_weighting!r}")
        _positive(self, "dwa_temperature")
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
        """The fields as nested dicts; a field added after caches were keyed by this dict is left out while it
        holds the default that reproduces the earlier behaviour (:data:`LATE_DEFAULTS`), so those keys hold."""
        d = dataclasses.asdict(self)
        for part, fields in LATE_DEFAULTS.items():
            for name, default in fields.items():
                if d[part].get(name) == default:
                    del d[part][name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return cls(
            name=d["name"],
            system=SystemConfig(**d["system"]),
            model=ModelConfig(**d["model"]),
            train=TrainConfig(**d["train"]),
        )


LATE_DEFAULTS = {
    "train": {"on_device": False, "task_weighting": "equal", "dwa_temperature": 2.0},
    "model": {"domain": "spatial", "power": "total"},
}
"""``{part: {field: default}}`` that :meth:`Config.to_dict` leaves out at these values (see there)."""

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


@dataclasses.dataclass(frozen=True)
class SAOConfig:
    """Paper 002's MT-SAO(-lift) model and its training (Sec. III-C, Algorithm 1; Sec. III-D1 for the values).

    System: ``max_users`` x ``max_antennas`` (K_m, N_m), active users / antennas ``K_schedule`` x
    ``N_schedule``, P = ``P`` W, ``snr_db`` = 10 log10(P / sigma2). Model: ``num_layers`` (T),
    ``features`` (M), ``num_heads`` (E), ``head_features`` (D_e), ``mlp_features``, ``lift`` (SAO-lift or
    SAO), ``gradient_input`` (each layer also sees the sum-rate gradient; not in 002), ``train_steps`` (Q_t)
    and ``infer_steps`` (Q_i) gradient steps per layer of step ``step_size`` (eta_w; 0 = the backtracking
    search of :func:`jaxbeam.refine`; with ``normalize_step``, a length relative to ``sqrt(P)`` along the
    normalised gradient; not in 002), ``learned_step`` (each layer scales that length per sample; needs
    ``normalize_step``) and ``monotone`` (a layer never lowers the sum rate); both not in 002. Training:
    window ``window`` (W) layers, each window position trained for one pass over the stages
    (T_w = |K| |N| ``stage_epochs`` epochs of ``steps_per_epoch`` batches of ``batch_size``, ``replay`` of them
    replayed from earlier stages), Adam with cosine decay ``learning_rate`` -> ``final_learning_rate`` per
    window position; ``steps_per_call`` as :class:`TrainConfig`'s. ``channel``: the channels of training and
    validation, :data:`SAO_CHANNELS` (002's Rayleigh, or :func:`jaxbeam.pathloss` with its default
    parameters; sources whose antennas are not i.i.d., such as a correlated ULA, would not survive the
    curriculum's random antenna masks, and Sionna's are too slow to draw per step).
    """

    max_users: int = 16
    max_antennas: int = 16
    K_schedule: tuple[int, ...] = (4, 8, 12, 16)
    N_schedule: tuple[int, ...] = (4, 8, 12, 16)
    P: float = 1.0
    snr_db: float = 20.0
    num_layers: int = 4
    features: int = 64
    num_heads: int = 4
    head_features: int = 0
    mlp_features: int = 64
    lift: bool = True
    gradient_input: bool = False
    train_steps: int = 3
    infer_steps: int = 5
    step_size: float = 0.0  # backtracking: 002's fixed 1e-2 lowers LMMSE's sum rate at 20 dB (README)
    normalize_step: bool = False
    learned_step: bool = False
    monotone: bool = False
    window: int = 2
    stage_epochs: int = 1
    steps_per_epoch: int = 60
    batch_size: int = 64
    replay: int = 8
    learning_rate: float = 1e-3
    final_learning_rate: float = 3e-4
    val_per_config: int = 32
    eval_batch_size: int = 256
    checkpoint_every: int = 500
    log_every: int = 10
    steps_per_call: int = 1
    seed: int = 0
    channel: str = "rayleigh"

    def __post_init__(self):
        if self.channel not in SAO_CHANNELS:
            raise ValueError(
                f"channel must be one of {SAO_CHANNELS} (i.i.d. antennas, drawn per training step; Sionna's sources "
                f"are too slow for that: label sets only); got {self.channel!r}"
            )
        for name in ("K_schedule", "N_schedule"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        _positive(self, "max_users", "max_antennas", "P", "num_layers", "features", "num_heads", "mlp_features")
        _positive(self, "window", "stage_epochs", "steps_per_epoch", "batch_size", "learning_rate")
        _positive(self, "final_learning_rate", "val_per_config", "eval_batch_size", "checkpoint_every", "log_every")
        _positive(self, "steps_per_call")
        if self.head_features < 0 or (self.head_features == 0 and self.features % self.num_heads):
            raise ValueError(
                f"head_features must be > 0, or 0 with features ({self.features}) divisible by num_heads "
                f"({self.num_heads}); got {self.head_features}"
            )
        if self.window > self.num_layers:
            raise ValueError(f"window must be <= num_layers = {self.num_layers}; got {self.window}")
        for name in ("train_steps", "infer_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an int >= 0; got {v!r}")
        if self.step_size < 0:
            raise ValueError(f"step_size must be >= 0 (0 = backtracking search); got {self.step_size}")
        if self.normalize_step and self.step_size == 0:
            raise ValueError("normalize_step=True needs step_size > 0 (the relative step length); got step_size=0")
        if self.learned_step and not self.normalize_step:
            raise ValueError("learned_step=True needs normalize_step=True (the factor scales the relative length)")
        if not 0 <= self.replay < self.batch_size:
            raise ValueError(f"replay must be in [0, batch_size = {self.batch_size}); got {self.replay}")
        for name, top in (("K_schedule", self.max_users), ("N_schedule", self.max_antennas)):
            sched = getattr(self, name)
            if not sched or list(sched) != sorted(set(sched)) or sched[0] < 1 or sched[-1] > top:
                raise ValueError(f"{name} must be increasing values in [1, {top}]; got {sched}")

    @property
    def sigma2(self) -> float:
        return self.P / 10.0 ** (self.snr_db / 10.0)

    @property
    def stages(self) -> list[tuple[int, int]]:
        """The masking stages (K, N) in curriculum order: users outer, antennas inner (Algorithm 1)."""
        return [(k, n) for k in self.K_schedule for n in self.N_schedule]

    @property
    def window_positions(self) -> int:
        return self.num_layers - self.window + 1

    @property
    def epochs_per_window(self) -> int:
        return len(self.stages) * self.stage_epochs

    @property
    def total_steps(self) -> int:
        return self.window_positions * self.epochs_per_window * self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        """The fields, less late ones at the default that reproduces earlier runs (:data:`SAO_LATE_DEFAULTS`),
        so the run folders and cache keys made before those fields existed still hold."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if not (k in SAO_LATE_DEFAULTS and v == SAO_LATE_DEFAULTS[k])}


SAO_CHANNELS = ("rayleigh", "pathloss")
"""The channel sources an SAO model trains on (:class:`SAOConfig`'s ``channel``)."""

SAO_LATE_DEFAULTS = {"learned_step": False, "monotone": False, "channel": "rayleigh"}
"""SAOConfig fields added after runs were cached, at the values that reproduce those runs."""

SAO_PRESETS = {
    # 002 Sec. III-D1; steps per epoch are not stated there (100 is jaxbeam's choice).
    "paper": SAOConfig(
        max_users=40,
        max_antennas=40,
        K_schedule=(8, 16, 24, 32, 40),
        N_schedule=(8, 16, 24, 32, 40),
        num_layers=10,
        features=128,
        num_heads=12,
        head_features=64,
        mlp_features=128,
        train_steps=5,
        infer_steps=10,
        step_size=1e-2,
        window=5,
        stage_epochs=10,
        steps_per_epoch=100,
        batch_size=128,
        replay=16,
        learning_rate=1e-4,
        final_learning_rate=3e-5,
        val_per_config=50,
    ),
    # jaxbeam's choice (README, "Paper 002"): the gradient input and a learned, normalised step, the best
    # measured on the (K, N) grid; 002's H-and-W-only layers learn nothing here, its fixed 1e-2 step diverges.
    # Q_t = 6, Q_i = 20: the first setting measured to reach #16's targets at every (K, N) (Fig. 4's sweep)
    "cpu": SAOConfig(
        gradient_input=True,
        step_size=0.02,
        normalize_step=True,
        learned_step=True,
        monotone=True,
        train_steps=6,
        infer_steps=20,
    ),
    "smoke": SAOConfig(
        max_users=4,
        max_antennas=4,
        K_schedule=(2, 4),
        N_schedule=(2, 4),
        num_layers=2,
        features=8,
        num_heads=2,
        mlp_features=8,
        train_steps=1,
        infer_steps=2,
        window=1,
        steps_per_epoch=2,
        batch_size=8,
        replay=2,
        val_per_config=4,
        eval_batch_size=16,
        log_every=1,
    ),
}


@dataclasses.dataclass(frozen=True)
class UnfoldedConfig:
    """Deep-unfolded WMMSE (:class:`jaxbeam.models.UnfoldedWMMSE`) and its label-free training.

    Model: ``iterations`` (T) unfolded WMMSE iterations, 3 T scalars. Training: ``epochs`` of
    ``steps_per_epoch`` Adam steps (cosine decay ``learning_rate`` -> ``final_learning_rate``) on batches of
    ``batch_size`` fresh ``channel`` channels, each sample at a (K, N) drawn uniformly from ``systems`` (masked
    inside ``max(K) x max(N)``), at ``P`` W and ``snr_db`` = 10 log10(P / sigma2); loss: minus the sum rate
    relative to RZF's on the same channel (each system counts alike). Validation: ``val_per_config`` fixed
    channels per system.
    """

    iterations: int = 5
    systems: tuple[tuple[int, int], ...] = ((12, 12), (16, 16), (16, 12), (12, 8))
    snr_db: float = 20.0
    P: float = 1.0
    batch_size: int = 256
    steps_per_epoch: int = 100
    epochs: int = 4
    learning_rate: float = 3e-2
    final_learning_rate: float = 3e-3
    val_per_config: int = 64
    eval_batch_size: int = 1024
    checkpoint_every: int = 100
    log_every: int = 20
    seed: int = 0
    channel: str = "rayleigh"

    def __post_init__(self):
        systems = tuple(tuple(int(x) for x in s) for s in self.systems)
        object.__setattr__(self, "systems", systems)
        if not systems or any(len(s) != 2 or min(s) < 1 for s in systems):
            raise ValueError(f"systems must be (K, N) pairs of positive ints; got {self.systems!r}")
        for name in ("iterations", "batch_size", "steps_per_epoch", "epochs", "val_per_config"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if not self.P > 0 or not self.learning_rate > 0 or self.final_learning_rate < 0:
            raise ValueError("P and learning_rate must be > 0 and final_learning_rate >= 0; "
                             f"got {self.P}, {self.learning_rate}, {self.final_learning_rate}")  # fmt: skip
        if self.channel not in SAO_CHANNELS:
            raise ValueError(f"channel must be one of {SAO_CHANNELS}; got {self.channel!r}")

    @property
    def sigma2(self) -> float:
        return self.P / 10.0 ** (self.snr_db / 10.0)

    @property
    def max_users(self) -> int:
        return max(k for k, _ in self.systems)

    @property
    def max_antennas(self) -> int:
        return max(n for _, n in self.systems)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["systems"] = [list(s) for s in self.systems]
        return d


UNFOLDED_PRESETS = {
    # the K >= N systems of the frontier at 20 dB; 400 steps of batch 256 train in a few minutes on 2 CPU cores
    "cpu": UnfoldedConfig(),
    "smoke": UnfoldedConfig(
        iterations=2,
        systems=((3, 3), (4, 2)),
        batch_size=8,
        steps_per_epoch=3,
        epochs=2,
        val_per_config=4,
        eval_batch_size=16,
        checkpoint_every=2,
        log_every=1,
    ),  # fmt: skip
}


def _from_presets(presets: dict, name: str, what: str, overrides: dict):
    """``presets[name]`` with fields replaced by ``overrides``; ``ValueError`` for an unknown name or field."""
    if name not in presets:
        raise ValueError(f"name must be one of {tuple(presets)}; got {name!r}")
    fields = {f.name for f in dataclasses.fields(presets[name])}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown {what} config field(s) {unknown}; known fields: {sorted(fields)}")
    return dataclasses.replace(presets[name], **overrides)


def get_unfolded_preset(name: str, **overrides) -> UnfoldedConfig:
    """The unfolded-WMMSE preset ``name`` (``"cpu"``, ``"smoke"``) with fields replaced by ``overrides``."""
    return _from_presets(UNFOLDED_PRESETS, name, "unfolded", overrides)


def get_sao_preset(name: str, **overrides) -> SAOConfig:
    """The SAO preset ``name`` (``"cpu"``, ``"paper"``, ``"smoke"``) with fields replaced by ``overrides``."""
    return _from_presets(SAO_PRESETS, name, "SAO", overrides)
