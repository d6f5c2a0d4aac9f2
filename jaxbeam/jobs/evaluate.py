"""Evaluation of a trained model against the references (eq. 31), one row per power level."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from jaxbeam.core.precoders import linear_beams
from jaxbeam.data.format import LabelSet

REFERENCES = ("mrt", "zf", "rzf", "rzf_bal", "wmmse")


def reference_beams(name: str, H, P, sigma2: float, *, power: str = "total"):
    """Beams of a reference method on a batch (full power): a closed-form precoder of
    :func:`jaxbeam.jobs.evaluate.linear_beams` (MRT, ZF: None where K > N, RZF, RZF_BAL: RZF with max-min
    SINR-balancing powers, near the MR optimum) or WMMSE. ``power="antenna"``: under ``P / N`` per antenna,
    the closed forms scaled into the set (:func:`jaxbeam.scale_antenna_power`) and WMMSE's per-antenna
    version (:func:`jaxbeam.wmmse_antenna`)."""
    if power not in ("total", "antenna"):
        raise ValueError(f"power must be 'total' or 'antenna'; got {power!r}")
    if name not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}; got {name!r}")
    if power == "total":
        return jb.wmmse(H, P, sigma2) if name == "wmmse" else linear_beams(name, H, P, sigma2)
    N = H.shape[-1]
    P_n = jnp.broadcast_to(jnp.asarray(P, H.real.dtype)[..., None] / N, (*jnp.shape(P), N))
    if name == "wmmse":
        return jb.wmmse_antenna(H, P_n, sigma2)
    W = linear_beams(name, H, P, sigma2)
    return None if W is None else jb.scale_antenna_power(W, P_n)


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
    power: str = "total",
) -> list[dict]:
    """Eq. 31 performance [%] of BERT and the references against the label solver, one row per P level.

    With ``csi_error_db``, every method sees the erroneous estimate ``jb.csi_error(H, mu)`` while the
    utility is evaluated on the true channel (Sec. VI-B4); the labels keep their perfect-CSI utility.
    For UBERT pass ``task`` (the task id fed to ``model.apply(v, H, P, task)``, normally
    ``jb.TASKS.index(utility)``); the model's column is named ``model_name`` (default ``"bert"``).
    ``power="antenna"``: the references under ``P / N`` per antenna (:func:`reference_beams`), for labels and
    models made under that constraint.
    """
    H, P = jnp.asarray(labels.H), jnp.asarray(labels.P)
    U_label = jb.utility(utility, H, jnp.asarray(labels.W), sigma2, Pc)
    H_seen = H if csi_error_db is None else jb.csi_error(jax.random.key(seed), H, csi_error_db)
    beams = {}
    if model is not None:
        beams[model_name] = batched_apply(model, params, H_seen, P, task=task)
    for name in references:
        W = reference_beams(name, H_seen, P, sigma2, power=power)
        if W is not None:
            beams[name] = W
    # every scored beam, the labels' too, must meet the constraint it is scored under (1e-4 relative)
    for name, W in {"label": jnp.asarray(labels.W), **beams}.items():
        bad = ~np.asarray(jb.feasible(W, P, power=power, rtol=1e-4))
        if bad.any():
            raise ValueError(
                f"{name} beams exceed the {power} power budget on {int(bad.sum())} of {len(bad)} samples "
                f"(first: sample {int(np.argmax(bad))}); a model or label set made under another constraint?"
            )
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
