"""Training and evaluation of the deep-unfolded WMMSE (:class:`jaxbeam.models.UnfoldedWMMSE`) on the shared engine.

One :func:`jaxbeam.train.fit` without labels: fresh channels per step at the preset's mix of (K, N)
(:class:`jaxbeam.train.sources.SystemsSource`), loss minus the sum rate relative to RZF's
(:func:`jaxbeam.train.losses.make_relative_rate_loss`), checkpointed and resumable like every run. The parameters
start at zero, which is WMMSE-T itself, so training can only be judged against WMMSE-T on the same channels:
:func:`evaluate_systems` reports both, with WMMSE's ladder of budgets and the converged solver.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import numpy as np

import jaxbeam as jb
from jaxbeam import train
from jaxbeam.configs import UnfoldedConfig
from jaxbeam.jobs.runs import check_run
from jaxbeam.models.unfolded import UnfoldedWMMSE
from jaxbeam.train.losses import make_relative_rate_loss
from jaxbeam.train.sources import SystemsSource, masked_channels

IDENTITY_KEY = "unfolded_config"
"""The key of a run's ``config.json`` identity that marks an unfolded-WMMSE run."""


def unfolded_model(cfg: UnfoldedConfig) -> UnfoldedWMMSE:
    return UnfoldedWMMSE(iterations=cfg.iterations, sigma2=cfg.sigma2)


def train_unfolded(
    cfg: UnfoldedConfig, workdir: str | Path, *, progress: bool = True, max_steps: int | None = None
) -> train.FitResult:
    """Train (or resume) ``cfg``'s unfolded WMMSE in ``workdir`` (a folder of another config is refused with
    the differing field named). ``max_steps``: stop after that many steps in all (like a kill)."""
    workdir = Path(workdir)
    identity = {IDENTITY_KEY: cfg.to_dict()}
    check_run(workdir, identity)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps({"identity": identity}, indent=1, sort_keys=True))
    source = SystemsSource(
        cfg.systems, batch_size=cfg.batch_size, steps_per_epoch=cfg.steps_per_epoch, P=cfg.P, seed=cfg.seed,
        channel=cfg.channel,
    )  # fmt: skip
    val = masked_channels(
        cfg.max_users, cfg.max_antennas, cfg.systems, cfg.val_per_config, P=cfg.P, seed=cfg.seed + 1,
        channel=cfg.channel,
    )  # fmt: skip
    if progress:
        print(
            f"unfolded WMMSE: T = {cfg.iterations} iterations, systems {list(cfg.systems)} at {cfg.snr_db:g} dB, "
            f"{cfg.total_steps:,} steps of batch {cfg.batch_size}"
        )
    return train.fit(
        unfolded_model(cfg),
        make_relative_rate_loss(cfg.sigma2),
        source,
        epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        final_learning_rate=cfg.final_learning_rate,
        val=val,
        workdir=workdir / "fit",
        config={IDENTITY_KEY: identity[IDENTITY_KEY]},
        seed=cfg.seed,
        eval_batch_size=cfg.eval_batch_size,
        checkpoint_every=cfg.checkpoint_every,
        log_every=cfg.log_every,
        max_steps=max_steps,
        progress=progress,
    )


def load_unfolded(workdir: str | Path) -> tuple[UnfoldedConfig, dict]:
    """``(config, best-on-validation parameters)`` of a :func:`train_unfolded` run.

    Raises:
      ValueError: ``workdir`` holds no unfolded-WMMSE run.
      FileNotFoundError: the run has no checkpoint yet.
    """
    workdir = Path(workdir)
    f = workdir / "config.json"
    if not f.is_file():
        raise ValueError(f"{workdir} is not an unfolded-WMMSE run directory (no config.json)")
    ident = json.loads(f.read_text()).get("identity", {})
    if not isinstance(ident, dict) or IDENTITY_KEY not in ident:
        raise ValueError(f"{workdir} holds no unfolded-WMMSE run (its config.json has no {IDENTITY_KEY})")
    cfg = UnfoldedConfig(**ident[IDENTITY_KEY])
    return cfg, train.load_params(workdir / "fit", which="best")


@functools.lru_cache(maxsize=16)
def _jitted(iterations: int, sigma2: float, P: float):
    model = UnfoldedWMMSE(iterations=iterations, sigma2=sigma2)
    return jax.jit(lambda p, H: model.apply({"params": p}, H, P))


def evaluate_systems(cfg: UnfoldedConfig, params: dict, *, samples: int = 1000, seed: int = 20261206) -> list[dict]:
    """Per ``(K, N)`` of ``cfg.systems``, on ``samples`` fresh channels (``seed``; not the training or validation
    draws): mean sum rate [bit/s/Hz] of the trained model, of the same iterations untrained (WMMSE-T), RZF,
    every WMMSE-k of :data:`jaxbeam.jobs.sao.LADDER` and converged WMMSE (tol 1e-5), as % of converged WMMSE
    with a 95 % interval of the mean per-sample ratio, and the seconds of one batch of all ``samples`` (compile
    excluded)."""
    from jaxbeam.jobs.sao import LADDER, _timed

    s2, P, T = cfg.sigma2, cfg.P, cfg.iterations
    rows = []
    for i, (K, N) in enumerate(cfg.systems):
        H = jb.rayleigh(jax.random.key(seed + i), (samples,), K, N)
        sr = lambda W, H=H: np.asarray(jb.sum_rate(H, W, s2), np.float64)  # noqa: E731
        W_conv, t_conv = _timed(jax.jit(lambda H: jb.wmmse(H, P, s2, tol=1e-5)), H)
        ref = sr(W_conv)
        methods = {"unfolded": (lambda H: _jitted(T, s2, P)(params, H)), "rzf": lambda H: jb.rzf(H, P, s2)}
        methods.update({f"wmmse_{k}": (lambda H, k=k: jb.wmmse_fixed(H, P, s2, k)) for k in sorted({*LADDER, T})})
        rec = {"K": K, "N": N, "samples": samples, "wmmse": float(ref.mean()), "seconds": {"wmmse": t_conv}}
        for name, fn in methods.items():
            W, sec = _timed(jax.jit(fn) if name != "unfolded" else fn, H)
            q = sr(W) / ref
            rec[f"{name}_pct"] = 100.0 * float(sr(W).mean() / ref.mean())
            rec[f"{name}_ci95"] = 100.0 * 1.96 * float(q.std(ddof=1) / np.sqrt(samples))
            rec["seconds"][name] = sec
        reach = [k for k in LADDER if rec[f"wmmse_{k}_pct"] >= rec["unfolded_pct"]]
        rec["matched_k"] = reach[0] if reach else None
        rows.append(rec)
    return rows


__all__ = ["IDENTITY_KEY", "evaluate_systems", "load_unfolded", "train_unfolded", "unfolded_model"]
