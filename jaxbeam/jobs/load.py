"""One loader for every trained model: ``load_beamformer(run_dir)`` returns a :class:`Beamformer`, a pure
``(H, P, sigma2, *, mask=None) -> W`` that a caller can use inside their own ``jit``, ``vmap`` or ``grad``, and
that every benchmark treats exactly like a classical method.

Runs it reads: ``jaxbeam pretrain`` BERT and UBERT runs, their fine-tunings (full, frozen, LoRA and MoE-LoRA:
adapters merged, eq. 22; a UBERT MoE-LoRA run with the given task's expert mix) and MT-SAO runs
(``jaxbeam pretrain --model sao_lift``) and deep-unfolded WMMSE runs (``jaxbeam pretrain --model unfolded``).
Checkpoints are read by :func:`jaxbeam.train.load_params` (the newest
readable step, with a warning for a damaged newer one).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from jaxbeam import configs


def run_params(run_dir: str | Path):
    """``(cfg, ubert, params_for)`` of a BERT or UBERT run directory.

    ``params_for(task)`` gives the best parameters with an adapter fine-tuning's adapters merged in (eq. 22). A
    MoE-LoRA run that records no task (UBERT's, trained on every task) mixes its experts by the given task's gate,
    one merge per task id; ``params_for(None)`` then raises ``ValueError``.

    Raises:
      ValueError: ``run_dir`` is not a BERT / UBERT run, or a BERT MoE-LoRA run records no task.
      FileNotFoundError: the run has no checkpoint.
    """
    from jaxbeam.jobs.pretrain import merged_params
    from jaxbeam.train import load_config, load_params

    path = Path(run_dir)
    if not (path / "config.json").is_file():
        raise ValueError(f"{run_dir} is not a training run directory (no config.json)")
    d = load_config(path)
    if "system" not in d:
        raise ValueError(f"{run_dir} holds no BERT or UBERT run (its config.json has no system)")
    cfg = configs.Config.from_dict({k: d[k] for k in ("name", "system", "model", "train")})
    ubert = d.get("model_kind") == "ubert"
    params = load_params(path, which="best")
    adapter = d.get("adapter")
    if adapter is None:
        return cfg, ubert, lambda task=None: params
    if not adapter.get("experts") or adapter.get("task") is not None:  # one merge serves every task
        merged = merged_params(params, adapter)
        return cfg, ubert, lambda task=None: merged
    if not ubert:
        raise ValueError(f"{run_dir} is a BERT MoE-LoRA run that records no task; its experts cannot be mixed")

    @functools.cache
    def per_task(task: int | None = None):
        if task is None:
            raise ValueError(
                f"{run_dir} is a UBERT MoE-LoRA run: its experts mix per task, so it has no single set of "
                "parameters; load it with a task (load_beamformer(..., task=...), jaxbeam evaluate) or use its base run"
            )
        return merged_params(params, {**adapter, "task": int(task)})

    return cfg, ubert, per_task


@dataclasses.dataclass(frozen=True)
class Beamformer:
    """A trained model as a pure function of the channels.

    Attributes:
      kind: ``"bert"``, ``"ubert"``, ``"sao"`` or ``"unfolded"``.
      utility: the utility it serves (``"sr"``, ``"mr"`` or ``"ee"``).
      sigma2: the noise power [W] it was trained at (BERT and UBERT only work there; MT-SAO's gradient steps
        and the unfolded WMMSE's iterations take any).
      N: the antennas it takes (None: any, UBERT and unfolded WMMSE; MT-SAO: at most N).
      apply: ``apply(params, H, P, sigma2, mask, antenna_mask) -> W``, pure.
      params: its parameters (merged adapters included).
      run_dir: where it was loaded from.
      K: MT-SAO's most users (None: any).
    """

    kind: str
    utility: str
    sigma2: float
    N: int | None
    apply: Callable = dataclasses.field(repr=False)
    params: Any = dataclasses.field(repr=False)
    run_dir: str = ""
    K: int | None = None

    def __call__(self, H, P, sigma2=None, *, mask=None, antenna_mask=None):
        """Beams ``W`` complex ``(..., K, N)`` for channels ``H`` ``(..., K, N)``, budget ``P`` [W] (scalar or
        ``(...,)``) and noise power ``sigma2`` [W] (default: the training value; BERT and UBERT accept only that
        value when it is a Python number, and take a traced one on trust); ``mask`` bool ``(..., K)`` of present
        users; ``antenna_mask`` bool ``(..., N)`` of present antennas (UBERT and MT-SAO; BERT has a fixed N)."""
        if antenna_mask is not None and self.kind == "bert":
            raise ValueError("antenna_mask: a BERT has a fixed number of antennas; give H with its N columns")
        if sigma2 is None:
            sigma2 = self.sigma2
        elif self.kind in ("bert", "ubert") and isinstance(sigma2, int | float) and not np.isclose(sigma2, self.sigma2):
            raise ValueError(
                f"sigma2 must be the noise power this {self.kind.upper()} was trained at, {self.sigma2} W; "
                f"got {sigma2!r} (BERT and UBERT take no noise power; MT-SAO does)"
            )
        return self.apply(self.params, H, P, sigma2, mask, antenna_mask)


def _bert(cfg, params, run_dir) -> Beamformer:
    from jaxbeam.jobs.builders import bert_model

    model = bert_model(cfg)

    def apply(params, H, P, sigma2, mask, antenna_mask):
        return model.apply({"params": params}, H, P, mask)

    return Beamformer("bert", cfg.train.utility, cfg.system.sigma2, cfg.system.N, apply, params, str(run_dir))


def _ubert(cfg, params_for, task: str, run_dir) -> Beamformer:
    from jaxbeam.jobs.builders import ubert_model

    model = ubert_model(cfg)
    t = jb.TASKS.index(task)

    def apply(params, H, P, sigma2, mask, antenna_mask):
        H = jnp.asarray(H)
        ids = jnp.full(H.shape[:-2], t, jnp.int32)
        P = jnp.broadcast_to(jnp.asarray(P, H.real.dtype), H.shape[:-2])
        return model.apply({"params": params}, H, P, ids, mask, antenna_mask)

    return Beamformer("ubert", task, cfg.system.sigma2, None, apply, params_for(t), str(run_dir))


def _sao(run_dir) -> Beamformer:
    from jaxbeam.jobs.sao import load_sao, sao_model

    cfg, params = load_sao(run_dir)

    def apply(params, H, P, sigma2, mask, antenna_mask):
        model = sao_model(cfg, sigma2=float(sigma2)) if isinstance(sigma2, int | float) else sao_model(cfg)
        return model.apply({"params": params}, H, P, mask, antenna_mask)

    return Beamformer("sao", "sr", cfg.sigma2, cfg.max_antennas, apply, params, str(run_dir), cfg.max_users)


def _unfolded(run_dir) -> Beamformer:
    from jaxbeam.jobs.unfolded import load_unfolded, unfolded_model

    cfg, params = load_unfolded(run_dir)
    model = unfolded_model(cfg)

    def apply(params, H, P, sigma2, mask, antenna_mask):
        return model.apply({"params": params}, H, P, mask, antenna_mask, sigma2)

    return Beamformer("unfolded", "sr", cfg.sigma2, None, apply, params, str(run_dir))


def load_beamformer(run_dir: str | Path, *, task: str | None = None) -> Beamformer:
    """The trained model in ``run_dir`` as a :class:`Beamformer` (module docstring).

    Args:
      run_dir: a run directory (its ``config.json`` says what it holds).
      task: UBERT's utility, ``"sr"``, ``"mr"`` or ``"ee"`` (required for UBERT unless the run records one;
        not allowed for the single-task models).

    Raises:
      ValueError: not a run directory, a task missing or not allowed, or a run that has no single model.
      FileNotFoundError / CheckpointError: no (readable) checkpoint.
    """
    path = Path(run_dir)
    f = path / "config.json"
    if not f.is_file():
        raise ValueError(f"run_dir {run_dir} is not a training run directory (no config.json)")
    ident = json.loads(f.read_text()).get("identity", {})
    from jaxbeam.jobs.unfolded import IDENTITY_KEY

    if isinstance(ident, dict) and IDENTITY_KEY in ident:
        if task not in (None, "sr"):
            raise ValueError(f"task: an unfolded-WMMSE run serves the sum rate only; got {task!r}")
        return _unfolded(path)
    if isinstance(ident, dict) and "sao_config" in ident:
        if task not in (None, "sr"):
            raise ValueError(f"task: an MT-SAO run serves the sum rate only; got {task!r}")
        return _sao(path)
    cfg, ubert, params_for = run_params(path)
    if not ubert:
        if task not in (None, cfg.train.utility):
            raise ValueError(f"task: {run_dir} is a single-task BERT for {cfg.train.utility!r}; got {task!r}")
        return _bert(cfg, params_for(), path)
    if task not in jb.TASKS:
        raise ValueError(f"task must be one of {jb.TASKS} for a UBERT run; got {task!r}")
    return _ubert(cfg, params_for, task, path)


__all__ = ["Beamformer", "load_beamformer", "run_params"]
