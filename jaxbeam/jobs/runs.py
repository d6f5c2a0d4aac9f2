"""Training runs: their identities, budgets and the budgeted fit.

A training run records its identity (:func:`train_identity`: the whole config, the model, the label sets'
fingerprints, the budget and the caller's extras) in ``config.json``; the jobs stop with a ``ValueError``
naming the differing fields when a run directory holds a run of another identity (:func:`check_run`), so a
model is reused only for the same config. Callers that cache (the quickstart, the experiments) put a hash
of the identity into the directory name.

Budgets: a fixed number of training steps (``steps``, turned into ``ceil(steps / steps_per_epoch)`` epochs:
reproducible on any machine), the preset's epochs, or, only when asked, a clock (``minutes``: epochs sized
by a throughput probe and training stopped on the clock; results depend on the machine and are labelled
so in the run's identity).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import jax
import numpy as np

from jaxbeam import train
from jaxbeam.configs import Config
from jaxbeam.data.format import check_identity, fingerprint, label_identity
from jaxbeam.models.ubert import UBERT

CPU_STEPS_PER_SECOND = 55.0
"""Assumed training rate [steps/s] of the cpu-preset BERT on a 2-core CPU (measured 50-68 on an idle machine);
used only to state how long a step budget takes, never to size one."""

UBERT_CPU_STEPS_PER_SECOND = 35.0
"""The same for the cpu-preset UBERT: its step (three tasks' losses) runs at 0.63-0.67 of BERT's
(:func:`steps_per_second` on both, one process, Rayleigh (6, 12) labels)."""


def params_digest(params) -> str:
    """Short sha256 of a parameter pytree's leaves (paths, dtypes, shapes and bytes): the identity of a
    pre-trained model that a fine-tuning starts from."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(params))[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def budget_record(*, steps: int | None = None, minutes: float | None = None, epochs: int | None = None) -> dict:
    """The training budget as recorded in a run's identity and results: a clock (``minutes``, marked
    ``machine_dependent``), else a step count, else the preset's epochs."""
    if steps is not None and minutes is not None:
        raise ValueError(f"give steps or minutes, not both; got steps={steps!r}, minutes={minutes!r}")
    if minutes is not None:
        if not float(minutes) > 0:
            raise ValueError(f"minutes must be > 0; got {minutes!r}")
        return {"minutes": float(minutes), "machine_dependent": True}
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(f"steps must be a positive int; got {steps!r}")
        return {"steps": int(steps), "machine_dependent": False}
    return {"epochs": int(epochs), "machine_dependent": False}


def describe_budget(budget: dict, rate: float = CPU_STEPS_PER_SECOND) -> str:
    """``"16,000 steps (~4.8 min on a 2-core CPU)"``, ``"a 5 min clock (machine-dependent)"`` or ``"40 epochs"``;
    ``rate``: the assumed steps/s (:data:`UBERT_CPU_STEPS_PER_SECOND` for UBERT)."""
    if "minutes" in budget:
        return f"a {budget['minutes']:g} min clock budget (results depend on the machine)"
    if "steps" in budget:
        return (
            f"{budget['steps']:,} steps (~{budget['steps'] / rate / 60:.1f} min on a 2-core CPU at ~{rate:g} steps/s)"
        )
    return f"{budget['epochs']} epochs"


LATE_MODEL_DEFAULTS = {"domain": "spatial", "power": "total"}
"""Module attributes added after caches were keyed by the module's repr, at the default that behaves as before:
:func:`model_identity` leaves them out, so those keys hold (as ``Config.to_dict`` does for config fields)."""


def model_identity(model) -> str:
    """The module's repr (class and fields) without the attributes of :data:`LATE_MODEL_DEFAULTS` at their defaults."""
    text = repr(model)
    for name, default in LATE_MODEL_DEFAULTS.items():
        text = text.replace(f"\n    {name} = {default!r}", "")
    return text


def train_identity(cfg: Config, label_metas: dict, budget: dict, model=None, **extra) -> dict:
    """Everything that determines a training run: the config, the module (its repr: class and fields), the
    label sets (``{name: [meta, ...]}`` -> their identity fingerprints), the budget and the caller's extras."""
    labels = {k: [fingerprint(label_identity(m)) for m in ms] for k, ms in sorted(label_metas.items())}
    ident = {
        "config": cfg.to_dict(),
        "labels": labels,
        "budget": budget,
        "model": None if model is None else model_identity(model),
    }
    return json.loads(json.dumps({**ident, **extra}, sort_keys=True, default=str))


def check_run(workdir: Path, identity: dict) -> None:
    """Stop (``ValueError`` naming the differing fields) if ``workdir`` holds a training run of another identity."""
    f = Path(workdir) / "config.json"
    if not f.is_file():
        return
    try:
        stored = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{f} is corrupted ({e}); delete {workdir} to train again") from None
    if not isinstance(stored, dict) or "identity" not in stored:
        raise ValueError(
            f"{workdir} holds a training run without an identity record (an older jaxbeam); "
            "use another directory or delete it"
        )
    check_identity(_flatten(stored["identity"]), _flatten(identity), f"the training run {workdir}")


def _flatten(d: dict, prefix: str = "") -> dict:
    """``{"config": {"system": {"sigma2": x}}}`` -> ``{"config.system.sigma2": x}`` (names in messages)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def cpu_rate(model) -> float:
    """The assumed 2-core CPU training rate [steps/s] of ``model`` (UBERT's or BERT's), for messages only."""
    return UBERT_CPU_STEPS_PER_SECOND if isinstance(model, UBERT) else CPU_STEPS_PER_SECOND


def epochs_for(workdir, tc_epochs, budget, model, loss_fn, source, progress) -> int:
    """Epochs of a run from its budget: ``ceil(steps / steps_per_epoch)``, the preset's, or (clock) a probe's."""
    if "steps" in budget:
        epochs = max(1, math.ceil(budget["steps"] / source.steps_per_epoch))
        if progress:
            print(
                f"  training {describe_budget(budget, cpu_rate(model))}: {epochs} epochs x "
                f"{source.steps_per_epoch} steps = {epochs * source.steps_per_epoch:,} steps"
            )
        return epochs
    if "minutes" in budget:
        return planned_epochs(workdir, tc_epochs, budget["minutes"], model, loss_fn, source, progress=progress)
    return tc_epochs


def steps_per_second(model, loss_fn, source, seconds: float = 4.0) -> float:
    """Training throughput (steps/s) of ``model`` on this machine, compile excluded."""
    eng = train.Engine(model, loss_fn, train.make_optimizer(1e-4, 100), source=source)
    batches = [b for _, b in zip(range(8), source.epoch(0), strict=False)]
    state = eng.init_state(jax.random.PRNGKey(0), batches[0])
    state, m = eng.step(state, batches[0])
    jax.block_until_ready(m)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        state, m = eng.step(state, batches[n % len(batches)])
        n += 1
    jax.block_until_ready(m)
    return n / (time.perf_counter() - t0)


def planned_epochs(workdir: Path, epochs: int, minutes, model, loss_fn, source, *, progress=True) -> int:
    """Epochs of a run: ``epochs``, or with a time budget ``minutes`` the number a throughput probe says
    fits in it. Recorded in ``config.json`` as ``epochs_planned``, which a resumed run reuses (the cosine
    schedule must not change under it)."""
    cfg_file = Path(workdir) / "config.json"
    if cfg_file.is_file() and "epochs_planned" in json.loads(cfg_file.read_text()):
        return int(json.loads(cfg_file.read_text())["epochs_planned"])
    if minutes is None:
        return epochs
    rate = steps_per_second(model, loss_fn, source)
    epochs = max(1, math.ceil(minutes * 60 * rate / source.steps_per_epoch))
    if progress:
        print(f"  ~{rate:.1f} steps/s, {source.steps_per_epoch} steps/epoch -> {epochs} epochs in ~{minutes} min")
    return epochs


def fit_within_budget(workdir: Path, minutes, model, loss_fn, source, **fit_kwargs):
    """:func:`jaxbeam.train.fit`, stopped after ``minutes`` of training time when given; best parameters.

    The probe of :func:`planned_epochs` can overestimate the rate (a machine that gets busier), so the
    budget is also enforced as a clock. A run that ended, on its schedule or on the clock, leaves
    ``budget_done.json``; calling again then loads its best weights instead of training on (a killed run
    has no such file and resumes from its checkpoint).
    """
    done = Path(workdir) / "budget_done.json"
    if minutes is not None and done.is_file():
        return train.load_params(workdir, which="best")
    limit = None if minutes is None else 60 * minutes
    res = train.fit(model, loss_fn, source, workdir=workdir, max_train_seconds=limit, **fit_kwargs)
    if minutes is not None:
        seconds = res.history[-1]["train_seconds"] if res.history else 0.0
        done.write_text(json.dumps({"minutes": minutes, "train_seconds": seconds, "epochs": len(res.history)}))
    return res.best_params
