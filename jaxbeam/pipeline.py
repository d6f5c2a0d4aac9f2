"""The jobs behind the ``jaxbeam`` command: labels -> pre-training -> evaluation (training shell).

Each step is cached under a run directory and resumable: labels are made by
:func:`jaxbeam.labels.generate_labels` (chunked), training by :func:`jaxbeam.train.fit` (orbax
checkpoints). A finished step is reused, so a second call only re-evaluates.

Cache keys (policy): a label set of :func:`labels_for` lives at ``labels/<utility>_<K>x<N>_s<seed>-<hash>``,
``<hash>`` the :func:`jaxbeam.data.fingerprint` of its identity (:func:`jaxbeam.labels.label_config`: solver,
tolerance, K, N, P levels, samples, seed, sigma2, Pc, channel source, dtype, label-solver version), so other
settings regenerate into another path; the stored ``meta.json`` is checked on load. A training run records
its identity (:func:`train_identity`: the whole config, the model, the label sets' fingerprints, the budget
and the caller's extras) in ``config.json``; :func:`pretrain`, :func:`pretrain_ubert` and
:func:`finetune_ubert` stop with a ``ValueError`` naming the differing fields when the run directory holds
a run of another identity (:func:`check_run`), so a model is reused only for the same config. Callers that
cache (the quickstart, the experiments) put a hash of the identity into the directory name.

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
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from jaxbeam import losses, train
from jaxbeam.configs import Config
from jaxbeam.data import LabelSet, check_identity, fingerprint, label_identity
from jaxbeam.evaluate import linear_beams
from jaxbeam.labels import generate_labels, label_config
from jaxbeam.losses_multitask import make_multitask_loss

REFERENCES = ("mrt", "zf", "rzf", "rzf_bal", "wmmse")
CPU_STEPS_PER_SECOND = 55.0
"""Assumed training rate [steps/s] of the cpu-preset BERT and UBERT on a 2-core CPU (measured 50-68 on an idle
machine); used only to state how long a step budget takes, never to size one."""


def labels_for(
    root: Path, cfg: Config, utility: str, K: int, samples: int, seed: int, progress=True, *, N: int | None = None
) -> LabelSet:
    """The cached label set ``root/labels/<utility>_<K>x<N>_s<seed>-<hash>`` (made or finished if needed).

    ``N`` defaults to the preset's; P, sigma2 and Pc are the preset's; solver and tolerance the defaults of
    :func:`jaxbeam.labels.generate_labels`. ``<hash>`` keys the path by the set's whole identity.
    """
    sy = cfg.system
    N = sy.N if N is None else N
    ident = label_config(utility, K, N, sy.P, samples, seed, sigma2=sy.sigma2, Pc=sy.Pc)
    path = Path(root) / "labels" / f"{utility}_{K}x{N}_s{seed}-{fingerprint(ident)}"
    if progress and not (path / "meta.json").is_file():
        print(f"labels: {utility.upper()} at (K, N) = ({K}, {N}), P = {list(sy.P)}, {samples} per P -> {path}")
    return generate_labels(path, utility, K, N, sy.P, samples, seed, sigma2=sy.sigma2, Pc=sy.Pc, progress=progress)


# ------------------------------------------------------------------------------------ run identities
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
    """``"16,000 steps (~4.8 min on a 2-core CPU)"``, ``"a 5 min clock (machine-dependent)"`` or ``"40 epochs"``."""
    if "minutes" in budget:
        return f"a {budget['minutes']:g} min clock budget (results depend on the machine)"
    if "steps" in budget:
        return (
            f"{budget['steps']:,} steps (~{budget['steps'] / rate / 60:.1f} min on a 2-core CPU at ~{rate:g} steps/s)"
        )
    return f"{budget['epochs']} epochs"


def train_identity(cfg: Config, label_metas: dict, budget: dict, model=None, **extra) -> dict:
    """Everything that determines a training run: the config, the module (its repr: class and fields), the
    label sets (``{name: [meta, ...]}`` -> their identity fingerprints), the budget and the caller's extras."""
    labels = {k: [fingerprint(label_identity(m)) for m in ms] for k, ms in sorted(label_metas.items())}
    ident = {
        "config": cfg.to_dict(),
        "labels": labels,
        "budget": budget,
        "model": None if model is None else repr(model),
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


def _epochs_for(workdir, tc_epochs, budget, model, loss_fn, source, progress) -> int:
    """Epochs of a run from its budget: ``ceil(steps / steps_per_epoch)``, the preset's, or (clock) a probe's."""
    if "steps" in budget:
        epochs = max(1, math.ceil(budget["steps"] / source.steps_per_epoch))
        if progress:
            print(
                f"  training {describe_budget(budget)}: {epochs} epochs x {source.steps_per_epoch} steps "
                f"= {epochs * source.steps_per_epoch:,} steps"
            )
        return epochs
    if "minutes" in budget:
        return planned_epochs(workdir, tc_epochs, budget["minutes"], model, loss_fn, source, progress=progress)
    return tc_epochs


def bert_model(cfg: Config, N: int | None = None, dtype=None):
    m = cfg.model
    return jb.models.BERT(
        num_antennas=cfg.system.N if N is None else N,
        features=m.features,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        mlp_ratio=m.mlp_ratio,
        dtype=dtype,
    )


def loss_for(cfg: Config, utility: str | None = None):
    tc, sy = cfg.train, cfg.system
    return losses.make_loss(
        utility or tc.utility,
        supervised=tc.supervised,
        sigma2=sy.sigma2,
        Pc=sy.Pc,
        lambda1=tc.lambda1,
        lambda2=tc.lambda2,
        similarity=tc.similarity,
    )


def steps_per_second(model, loss_fn, source, seconds: float = 4.0) -> float:
    """Training throughput (steps/s) of ``model`` on this machine, compile excluded."""
    eng = train.Engine(model, loss_fn, train.make_optimizer(1e-4, 100))
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


def pretrain(
    cfg: Config,
    labels: LabelSet,
    workdir: Path,
    *,
    steps: int | None = None,
    minutes: float | None = None,
    progress: bool = True,
    model=None,
    identity: dict | None = None,
):
    """Supervised (eq. 17) or unsupervised (eq. 18) pre-training of BERT on ``labels``; resumable.

    Budget: ``steps`` training steps (``ceil(steps / steps_per_epoch)`` epochs, the cosine schedule over
    them; reproducible anywhere), else with ``minutes`` a clock (epochs sized once by a throughput probe,
    recorded in ``workdir/config.json`` so a resumed run keeps its schedule, and training stopped on the
    clock: machine-dependent), else the preset's ``epochs``. A finished run is not trained again. ``model``
    replaces BERT by another module with BERT's call signature (a baseline of
    :mod:`jaxbeam.models.baselines`); ``identity`` adds fields to the run's identity (:func:`train_identity`,
    checked by :func:`check_run`: ``ValueError`` if ``workdir`` holds a run of another identity). Returns
    the best-on-validation parameters.
    """
    workdir = Path(workdir)
    tc = cfg.train
    model, loss_fn = bert_model(cfg) if model is None else model, loss_for(cfg)
    budget = budget_record(steps=steps, minutes=minutes, epochs=tc.epochs)
    ident = train_identity(cfg, {"labels": [labels.meta]}, budget, model, **(identity or {}))
    check_run(workdir, ident)
    source = train.ArraySource(
        train.label_arrays(labels.split("train"), with_labels=tc.supervised),
        tc.batch_size,
        seed=tc.seed,
        transform=train.symmetry_augment,
    )
    epochs = _epochs_for(workdir, tc.epochs, budget, model, loss_fn, source, progress)
    return fit_within_budget(
        workdir,
        minutes,
        model,
        loss_fn,
        source,
        epochs=epochs,
        learning_rate=tc.learning_rate,
        val=train.label_arrays(labels.split("val")),
        config={**cfg.to_dict(), "epochs_planned": epochs, "label_meta": labels.meta, "identity": ident},
        seed=tc.seed,
        eval_batch_size=tc.eval_batch_size,
        checkpoint_every=tc.checkpoint_every,
        log_every=tc.log_every,
        progress=progress,
    )


def reference_beams(name: str, H, P, sigma2: float):
    """Beams of a reference method on a batch (full power): a closed-form precoder of
    :func:`jaxbeam.evaluate.linear_beams` (MRT, ZF: None where K > N, RZF, RZF_BAL: RZF with max-min
    SINR-balancing powers, near the MR optimum) or WMMSE."""
    if name == "wmmse":
        return jb.wmmse(H, P, sigma2)
    if name not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}; got {name!r}")
    return linear_beams(name, H, P, sigma2)


def batched_apply(model, params, H, P, batch_size: int = 2048, task: int | None = None):
    """``model.apply`` over ``H`` in batches (UBERT: ``task`` is one task id for every sample)."""
    fwd = jax.jit(model.apply)
    extra = () if task is None else (jnp.full(len(H), task, jnp.int32),)
    out = []
    for i in range(0, len(H), batch_size):
        s = slice(i, i + batch_size)
        # one batch in flight at a time (see jaxbeam.train.Engine.step)
        out.append(jax.block_until_ready(fwd({"params": params}, H[s], P[s], *(x[s] for x in extra))))
    return jnp.concatenate(out)


def performance_rows(
    utility: str,
    labels: LabelSet,
    sigma2: float,
    Pc: float,
    *,
    model=None,
    params=None,
    references: Sequence[str] = REFERENCES,
    csi_error_db: float | None = None,
    seed: int = 0,
    task: int | None = None,
    model_name: str = "bert",
) -> list[dict]:
    """Eq. 31 performance [%] of BERT and the references against the label solver, one row per P level.

    With ``csi_error_db``, every method sees the erroneous estimate ``jb.csi_error(H, mu)`` while the
    utility is evaluated on the true channel (Sec. VI-B4); the labels keep their perfect-CSI utility.
    For UBERT pass ``task`` (the task id fed to ``model.apply(v, H, P, task)``, normally
    ``jb.TASKS.index(utility)``); the model's column is named ``model_name`` (default ``"bert"``).
    """
    H, P = jnp.asarray(labels.H), jnp.asarray(labels.P)
    U_label = jb.utility(utility, H, jnp.asarray(labels.W), sigma2, Pc)
    H_seen = H if csi_error_db is None else jb.csi_error(jax.random.key(seed), H, csi_error_db)
    beams = {}
    if model is not None:
        beams[model_name] = batched_apply(model, params, H_seen, P, task=task)
    for name in references:
        W = reference_beams(name, H_seen, P, sigma2)
        if W is not None:
            beams[name] = W
    rows = []
    for p in sorted(set(np.asarray(labels.P).tolist())):
        sel = np.asarray(labels.P) == p
        row = {"utility": utility, "K": labels.K, "N": labels.N, "P": p, "samples": int(sel.sum())}
        row["label"] = float(jnp.mean(U_label[sel]))
        for name, W in beams.items():
            u = jb.utility(utility, H[sel], W[sel], sigma2, Pc)
            row[name] = float(jb.performance(u, U_label[sel]))
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------- UBERT (Sec. V)
def ubert_model(cfg: Config, dtype=None):
    """UBERT of the preset's size (F, L, C, FFN ratio); its parameters fit every K and N."""
    m = cfg.model
    return jb.models.UBERT(
        features=m.features,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        mlp_ratio=m.mlp_ratio,
        dtype=dtype,
        head=m.ubert_head,
        sigma2=cfg.system.sigma2,
    )


def _task_label_sets(labels_by_task) -> dict[str, list[LabelSet]]:
    """``{task name: [LabelSet, ...]}`` from a mapping keyed by task name (values a LabelSet or a list)."""
    if not hasattr(labels_by_task, "items"):
        raise ValueError(f"labels_by_task must be a mapping {{task name: LabelSet}}; got {type(labels_by_task)}")
    out = {}
    for name, value in labels_by_task.items():
        if name not in jb.TASKS:
            raise ValueError(f"labels_by_task keys must be task names in {jb.TASKS}; got {name!r}")
        sets = list(value) if isinstance(value, list | tuple) else [value]
        if not sets or not all(isinstance(x, LabelSet) for x in sets):
            raise ValueError(f"labels_by_task[{name!r}] must be a LabelSet or a list of LabelSets")
        out[name] = sets
    if not out:
        raise ValueError("labels_by_task is empty")
    return out


def ubert_batch_size(batch_size: int, num_devices: int | None = None) -> int:
    """The preset batch size rounded down to a multiple of ``lcm(3, devices)`` (at least that): Algorithm 1
    needs B / 3 samples per task, and the data-parallel step an equal share per device."""
    q = math.lcm(3, jax.device_count() if num_devices is None else num_devices)
    return max(q, batch_size - batch_size % q)


def _multitask_setup(cfg: Config, sets: dict[str, list[LabelSet]], *, sampling: str, augment: bool, seed: int):
    """Training source, validation arrays and the loss whose ``"utility"`` is mean eq. 31 / 100 over tasks."""
    B = ubert_batch_size(cfg.train.batch_size)
    transform = train.symmetry_augment if augment else None
    if len(sets) == len(jb.TASKS):
        source = train.MultiTaskSource(
            {t: [x.split("train") for x in xs] for t, xs in sets.items()},
            B,
            seed=seed,
            sampling=sampling,
            transform=transform,
        )
    else:  # fine-tuning on a subset of the tasks: a shuffled pool (one task: plain single-task batches)
        arrays = train.multitask_arrays({t: [x.split("train") for x in xs] for t, xs in sets.items()})
        source = train.ArraySource(arrays, min(B, len(arrays["H"])), seed=seed, transform=transform)
    val = train.multitask_arrays({t: [x.split("val") for x in xs] for t, xs in sets.items()})
    # eq. 31 normaliser per task: the validation mean of the label utility (tasks not present: 1)
    scale = [1.0] * len(jb.TASKS)
    for t, xs in sets.items():
        scale[jb.TASKS.index(t)] = float(np.mean(np.concatenate([x.split("val").U for x in xs])))
    loss_fn = make_multitask_loss(sigma2=cfg.system.sigma2, Pc=cfg.system.Pc, utility_scale=scale)
    return source, val, loss_fn, scale, B


def pretrain_ubert(
    cfg: Config,
    labels_by_task,
    workdir: Path,
    *,
    steps: int | None = None,
    minutes: float | None = None,
    sampling: str = "uniform",
    augment: bool = True,
    progress: bool = True,
    model=None,
    loss_fn=None,
    identity: dict | None = None,
):
    """Supervised multi-task pre-training of UBERT (eqs. 29-30, Algorithm 1) on one label set per task; resumable.

    Args:
      cfg: preset (model size, learning rate, epochs, seed; the batch size is rounded by
        :func:`ubert_batch_size`).
      labels_by_task: ``{"sr": LabelSet, "mr": ..., "ee": ...}`` (all three; a value may be a list of label
        sets of several (K, N), padded with masks). Their ``"train"`` parts are trained on, their ``"val"``
        parts select the best weights.
      workdir: run directory (orbax checkpoints, ``config.json``, ``metrics.jsonl``).
      steps, minutes: the budget, as :func:`pretrain` (a fixed step count; or a clock, machine-dependent;
        neither: the preset's epochs).
      sampling: ``"uniform"`` (Algorithm 1) or ``"random"`` (Fig. 6 baseline).
      augment: label-preserving symmetry augmentation (:func:`jaxbeam.train.symmetry_augment`).
      progress: progress bar and messages.
      model: a UBERT variant to train instead of the preset's (e.g. an ablation of Table VIII).
      loss_fn: a multi-task loss replacing eq. 30 (e.g. the Sum Loss of eq. 32, Table VII); it must keep the
        ``"utility"`` metric of ``make_multitask_loss`` (the validation criterion). Name it in ``identity``.
      identity: fields added to the run's identity (:func:`train_identity`, checked by :func:`check_run`).

    The validation criterion is the mean over tasks of eq. 31 / 100 (``make_multitask_loss`` with
    ``utility_scale`` = each task's mean validation label utility), so SR, MR and EE count equally despite
    their different units. Returns the best-on-validation parameters.
    """
    sets = _task_label_sets(labels_by_task)
    if sorted(sets) != sorted(jb.TASKS):
        raise ValueError(f"labels_by_task must hold label sets for every task {jb.TASKS}; got {sorted(sets)}")
    workdir = Path(workdir)
    tc = cfg.train
    model = ubert_model(cfg) if model is None else model
    source, val, eq30, scale, B = _multitask_setup(cfg, sets, sampling=sampling, augment=augment, seed=tc.seed)
    budget = budget_record(steps=steps, minutes=minutes, epochs=tc.epochs)
    metas = {t: [x.meta for x in xs] for t, xs in sets.items()}
    extra = {"sampling": sampling, "augment": augment, "loss": "eq30" if loss_fn is None else "custom"}
    ident = train_identity(cfg, metas, budget, model, **{**extra, **(identity or {})})
    check_run(workdir, ident)
    loss_fn = eq30 if loss_fn is None else loss_fn
    epochs = _epochs_for(workdir, tc.epochs, budget, model, loss_fn, source, progress)
    config = {
        **cfg.to_dict(),
        "model_kind": "ubert",
        "epochs_planned": epochs,
        "batch_size_used": B,
        "sampling": sampling,
        "augment": augment,
        "utility_scale": scale,
        "label_meta": metas,
        "identity": ident,
    }
    return fit_within_budget(
        workdir,
        minutes,
        model,
        loss_fn,
        source,
        epochs=epochs,
        learning_rate=tc.learning_rate,
        val=val,
        config=config,
        seed=tc.seed,
        eval_batch_size=tc.eval_batch_size,
        checkpoint_every=tc.checkpoint_every,
        log_every=tc.log_every,
        progress=progress,
    )


def finetune_ubert(
    cfg: Config,
    labels_by_task,
    workdir: Path,
    init_params,
    *,
    epochs: int = 10,
    learning_rate: float = 2e-5,
    sampling: str = "uniform",
    augment: bool = False,
    progress: bool = True,
    identity: dict | None = None,
):
    """Supervised fine-tuning of a pre-trained UBERT (Sec. V-C2): same architecture, same loss (eqs. 29-30).

    Every parameter starts from ``init_params``; none is re-initialised, whatever K and N the new label
    sets have (UBERT's parameter shapes depend on F only; checked against a fresh init, ``ValueError`` if
    the trees differ, e.g. another F or L).

    Args:
      cfg: preset of the pre-trained model (its F, L, C; the batch size as in :func:`pretrain_ubert`).
      labels_by_task: ``{task name: LabelSet or list}`` for one, two or all three tasks (all three: balanced
        batches of Algorithm 1; fewer: a shuffled pool of their samples).
      workdir: run directory of the fine-tuning.
      init_params: the pre-trained parameters (``"params"`` collection).
      epochs: epochs (paper: 10); learning_rate: initial Adam learning rate (paper: 2e-5, cosine decay).
      sampling, augment, progress: as :func:`pretrain_ubert`.
      identity: fields added to the run's identity (which holds :func:`params_digest` of ``init_params``).

    Returns:
      the best-on-validation parameters.
    """
    sets = _task_label_sets(labels_by_task)
    model = ubert_model(cfg)
    source, val, loss_fn, scale, B = _multitask_setup(
        cfg, sets, sampling=sampling, augment=augment, seed=cfg.train.seed
    )
    example = {k: np.asarray(v)[:1] for k, v in next(source.epoch(0)).items()}
    kw = {k: example[k] for k in ("mask", "antenna_mask") if k in example}
    fresh = jax.eval_shape(
        lambda: model.init(jax.random.PRNGKey(0), example["H"], example["P"], example["task"], **kw)
    )["params"]
    fresh_shapes = jax.tree.map(lambda x: tuple(x.shape), fresh)
    if jax.tree.map(lambda x: tuple(np.shape(x)), init_params) != fresh_shapes:
        raise ValueError("init_params do not fit this UBERT (another F, L, C or head?); nothing is re-initialised")
    budget = {"epochs": int(epochs), "learning_rate": float(learning_rate), "machine_dependent": False}
    metas = {t: [x.meta for x in xs] for t, xs in sets.items()}
    extra = {"finetune": True, "init_params": params_digest(init_params), "sampling": sampling, "augment": augment}
    ident = train_identity(cfg, metas, budget, model, **{**extra, **(identity or {})})
    check_run(Path(workdir), ident)
    res = train.fit(
        model,
        loss_fn,
        source,
        epochs=epochs,
        learning_rate=learning_rate,
        val=val,
        workdir=workdir,
        config={
            **cfg.to_dict(),
            "model_kind": "ubert",
            "finetune": True,
            "batch_size_used": B,
            "utility_scale": scale,
            "label_meta": metas,
            "identity": ident,
        },
        seed=cfg.train.seed,
        init_params=init_params,
        eval_batch_size=cfg.train.eval_batch_size,
        checkpoint_every=cfg.train.checkpoint_every,
        log_every=cfg.train.log_every,
        progress=progress,
    )
    return res.best_params
