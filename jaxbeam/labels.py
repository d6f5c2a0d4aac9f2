"""Label data set generation: chunked, resumable, sharded over all local devices (training shell).

``generate_labels`` (and ``jaxbeam label``) solve ``samples`` Rayleigh channels per power level with the
label solver of the utility and write the data set format of :mod:`jaxbeam.data` (plain ``.npy`` files
plus ``meta.json``; load with :func:`jaxbeam.data.load_labels` or ``numpy.load``).

Determinism and resume: the channels of chunk ``j`` of power level ``l`` are drawn from
``fold_in(fold_in(key(seed), l), j)``, never from the run's history, and each finished chunk is
written atomically to ``OUT/chunks/`` before the next starts. A run that is interrupted and started
again with the same arguments skips the finished chunks, so the result is the one an uninterrupted run
gives: no sample missing or duplicated. When all chunks are done they are assembled into the final
files, the 8:1:1 split is drawn (:func:`jaxbeam.data.split_ids`) and the chunk folder is removed.

Devices: each chunk is one ``jit`` call whose batch axis is sharded over a 1-D ``"data"`` mesh of all
local devices (padded to a multiple of the device count); every sample is solved on its own, so the
labels do not depend on the number of devices (up to floating-point rounding of the compiled code).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam
from jaxbeam import solvers
from jaxbeam.channels import rayleigh
from jaxbeam.data import LabelSet, save_labels, split_ids
from jaxbeam.utility import TASKS
from jaxbeam.utility import utility as utility_fn

DEFAULT_SOLVER = {"sr": "wmmse", "mr": "sca", "ee": "sca"}
SOLVERS = {"sr": ("wmmse", "sca"), "mr": ("sca", "exact"), "ee": ("sca",)}


def label_solver(utility: str, solver: str, H, P, sigma2, Pc, tol):
    """The label beams of one batch: ``W`` complex ``(B, K, N)`` (pure; jit it)."""
    if solver == "wmmse":
        return solvers.wmmse(H, P, sigma2, tol=tol)
    if solver == "exact":
        return solvers.maxmin_exact(H, P, sigma2)
    return solvers.sca(H, P, sigma2, utility, Pc, tol)


def _chunk_name(level: int, index: int) -> str:
    return f"{level:03d}_{index:06d}.npz"


def _solve_chunk_fn(utility, solver, sigma2, Pc, tol, mesh):
    data = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))

    def solve(H, P):
        W = label_solver(utility, solver, H, P, sigma2, Pc, tol)
        return W, utility_fn(utility, H, W, sigma2, Pc)

    return jax.jit(solve, in_shardings=(data, data), out_shardings=(data, data))


def generate_labels(
    out: str | os.PathLike,
    utility: str,
    K: int,
    N: int,
    P_levels: Sequence[float],
    samples: int,
    seed: int = 0,
    *,
    sigma2: float = 0.1,
    Pc: float = 0.5,
    tol: float = 1e-4,
    solver: str | None = None,
    chunk_size: int = 1024,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    max_chunks: int | None = None,
) -> LabelSet | None:
    """Make (or finish) a label data set in directory ``out``.

    Args:
      out: output directory (created; an unfinished run there is resumed).
      utility: ``"sr"``, ``"mr"`` or ``"ee"``.
      K, N: users and transmit antennas.
      P_levels: power budgets [W]; ``samples`` samples are made for each.
      samples: samples per power level.
      seed: channel seed (and the split's seed).
      sigma2: noise power [W]; Pc: circuit power [W] (EE).
      tol: solver convergence tolerance (the paper's 1e-4).
      solver: ``"wmmse"`` or ``"sca"`` (SR), ``"sca"`` or ``"exact"`` (MR, max-min by bisection), ``"sca"``
        (EE); default ``wmmse`` for SR and ``sca`` otherwise.
      chunk_size: samples per chunk (one jit call; the unit of resume).
      devices: devices to shard each chunk over (default all local devices).
      progress: show a tqdm progress bar (samples/s and ETA).
      max_chunks: stop after solving this many new chunks and return None (for tests of resume).

    Returns:
      the finished :class:`jaxbeam.data.LabelSet` (also written to ``out``), or None if stopped early.
    """
    if utility not in TASKS:
        raise ValueError(f"utility must be one of {TASKS}; got {utility!r}")
    solver = DEFAULT_SOLVER[utility] if solver is None else solver
    if solver not in SOLVERS[utility]:
        raise ValueError(f"solver for utility {utility!r} must be one of {SOLVERS[utility]}; got {solver!r}")
    for name, v in (("K", K), ("N", N), ("samples", samples), ("chunk_size", chunk_size)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    P_levels = [float(p) for p in P_levels]
    if not P_levels or any(not p > 0 for p in P_levels):
        raise ValueError(f"P_levels must be a non-empty list of positive powers; got {P_levels!r}")
    for name, v in (("sigma2", sigma2), ("Pc", Pc), ("tol", tol)):
        if not float(v) > 0:
            raise ValueError(f"{name} must be > 0; got {v!r}")

    out = Path(out)
    chunks = out / "chunks"
    chunks.mkdir(parents=True, exist_ok=True)
    dtype = jnp.zeros((), jnp.complex64).dtype
    config = {
        "utility": utility,
        "solver": solver,
        "K": int(K),
        "N": int(N),
        "P": P_levels,
        "samples_per_level": int(samples),
        "seed": int(seed),
        "sigma2": float(sigma2),
        "Pc": float(Pc),
        "tol": float(tol),
        "chunk_size": int(chunk_size),
    }
    cfg_path = chunks / "config.json"
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        if old != config:
            diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
            raise ValueError(f"{out} holds an unfinished run with other settings (old, new): {diff}")
    else:
        tmp = chunks / ".config.json.tmp"
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
        os.replace(tmp, cfg_path)

    devices = list(jax.local_devices()) if devices is None else list(devices)
    mesh = jax.sharding.Mesh(np.asarray(devices), ("data",))
    solve = _solve_chunk_fn(utility, solver, float(sigma2), float(Pc), float(tol), mesh)
    n_dev = len(devices)
    padded = -(-chunk_size // n_dev) * n_dev
    n_chunks = -(-samples // chunk_size)
    plan = [(lv, j) for lv in range(len(P_levels)) for j in range(n_chunks)]
    size = lambda j: min(chunk_size, samples - j * chunk_size)
    todo = [(lv, j) for lv, j in plan if not (chunks / _chunk_name(lv, j)).is_file()]
    total = samples * len(P_levels)
    done = total - sum(size(j) for _, j in todo)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=done, unit="sample", desc=f"{utility} labels ({K}, {N})", smoothing=0.1)
    key = jax.random.key(seed)
    t0 = time.perf_counter()
    try:
        for count, (lv, j) in enumerate(todo):
            if max_chunks is not None and count >= max_chunks:
                return None
            n = size(j)
            H = rayleigh(jax.random.fold_in(jax.random.fold_in(key, lv), j), (chunk_size,), K, N, dtype=dtype)
            H = jnp.concatenate([H, jnp.broadcast_to(H[:1], (padded - chunk_size,) + H.shape[1:])])
            P = jnp.full((padded,), P_levels[lv], H.real.dtype)
            W, U = solve(H, P)
            arrays = {"H": np.asarray(H[:n]), "W": np.asarray(W[:n]), "U": np.asarray(U[:n])}
            tmp = chunks / f".{_chunk_name(lv, j)}.tmp"
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, chunks / _chunk_name(lv, j))
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()

    Hs, Ws, Us, Ps = [], [], [], []
    for lv, j in plan:
        with np.load(chunks / _chunk_name(lv, j)) as z:
            Hs.append(z["H"])
            Ws.append(z["W"])
            Us.append(z["U"])
        Ps.append(np.full(size(j), P_levels[lv], np.float32))
    U = np.concatenate(Us).astype(np.float32)
    P_all = np.concatenate(Ps)
    meta = {
        **config,
        "samples": int(total),
        "mean_utility": {str(p): float(U[P_all == np.float32(p)].mean()) for p in P_levels},
        "mean_utility_all": float(U.mean()),
        "package_version": jaxbeam.__version__,
        "jax_version": jax.__version__,
        "dtype": str(dtype),
        "seconds_last_session": round(time.perf_counter() - t0, 3),
    }
    labels = LabelSet(
        H=np.concatenate(Hs),
        W=np.concatenate(Ws),
        P=P_all,
        U=U,
        split_ids=split_ids(total, seed),
        meta=meta,
    )
    save_labels(out, labels)
    shutil.rmtree(chunks)
    return labels


__all__ = ["DEFAULT_SOLVER", "SOLVERS", "generate_labels", "label_solver"]
