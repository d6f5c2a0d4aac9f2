"""Label data set generation: chunked, resumable, sharded over all local devices (training shell).

``generate_labels`` (and ``jaxbeam label``) solve ``samples`` channels (i.i.d. Rayleigh or another source,
:data:`SOURCES`) per power level with the label solver of the utility (SR: WMMSE, MR: the exact max-min
optimum ``jb.maxmin_exact``, EE: SCA) and write the data set format of :mod:`jaxbeam.data.format` (plain
``.npy`` files plus ``meta.json``; load with :func:`jaxbeam.data.format.load_labels` or ``numpy.load``).

Determinism and resume: the channels of chunk ``j`` of power level ``l`` are drawn from
``fold_in(fold_in(key(seed), l), j)``, never from the run's history. Each finished chunk is written
atomically to ``OUT/chunks/`` and then its sha256 beside it (``*.npz.sha256``); a restart with the same
arguments keeps exactly the chunks whose checksum, arrays and shapes check out, and re-solves any other
(truncated, corrupted, or without a checksum because the run was killed in between) with a one-line
warning. The result is bit-identical to an uninterrupted run on the same devices, whenever the run was
killed. When all chunks are done they are assembled into the final files (``meta.json`` last, with the
sha256 of every array file), the 8:1:1 split is drawn (:func:`jaxbeam.data.format.split_ids`) and the chunk folder
is removed.

Finished sets (policy): the same command on a finished set is a no-op (the set is loaded, its checksums
verified, and returned); other settings on a finished or unfinished set stop with a ``ValueError`` naming
each differing field; a finished set whose files fail their checksum is regenerated with a warning.
The determining fields are :data:`jaxbeam.data.format.IDENTITY_FIELDS` (:func:`label_config`), among them
:data:`LABEL_VERSION`, raised whenever a label solver's result changes.

Devices: each chunk is one ``jit`` call whose batch axis is sharded over a 1-D ``"data"`` mesh of all
local devices (padded to a multiple of the device count); every sample is solved on its own, so the
labels do not depend on the number of devices (up to floating-point rounding of the compiled code).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxbeam import solvers
from jaxbeam._version import __version__
from jaxbeam.core.channels import CHANNELS, channel_params, draw_channels
from jaxbeam.core.utility import TASKS
from jaxbeam.core.utility import utility as utility_fn
from jaxbeam.data.format import (
    LabelSet,
    check_identity,
    file_sha256,
    label_identity,
    load_labels,
    save_labels,
    split_ids,
)

DEFAULT_SOLVER = {"sr": "wmmse", "mr": "exact", "ee": "sca"}
"""Label solver per utility: WMMSE (SR), the exact max-min optimum (MR), projected-gradient SCA (EE)."""
SOLVER_POWER = {
    "wmmse": "total",
    "exact": "total",
    "sca": "total",
    "wmmse-antenna": "antenna",
    "wmmse-antenna-strict": "antenna",
    "sca-antenna": "antenna",
    "sca-antenna-strict": "antenna",
}
"""The power constraint of each label solver (the one table that says it): ``"total"`` (``||W||_F^2 <= P``) or
``"antenna"`` (``P / N`` on every antenna)."""
CONSTRAINT_TEXT = {"total": "total, ||W||_F^2 <= P", "antenna": "per-antenna, P / N each"}
"""``meta["constraint"]`` of a label set, by :data:`SOLVER_POWER`."""
SOLVERS = {
    "sr": ("wmmse", "sca", "wmmse-antenna", "sca-antenna", "wmmse-antenna-strict"),
    "mr": ("exact", "sca", "sca-antenna", "sca-antenna-strict"),
    "ee": ("sca", "sca-antenna", "sca-antenna-strict"),
}
"""``*-antenna``: per-antenna budgets ``P / N`` each (:func:`jaxbeam.wmmse_antenna` with its own stop, or
:func:`jaxbeam.sca` with ``power="antenna"``) instead of the total budget ``P``. ``*-antenna-strict``: the same
run on to convergence (:data:`STRICT`), never below the plain run on any sample, several times slower; SCA's
plain stop ends a few % low on near-far channels (per-antenna WMMSE's, since label version 3, within 0.1 %)."""
MAXMIN_GAP = 1e-4
"""The exact max-min solver counts a sample as converged when its certified SINR bracket is within this
relative gap (``sinr_upper <= sinr (1 + gap)``)."""

STRICT = {"tol": 1e-9, "max_iter": 5000, "window": 10, "patience": 20}
"""Stopping rule of the ``*-strict`` solvers: relative change ``tol`` over ``window`` (WMMSE) or ``patience``
(SCA) iterations, at most ``max_iter`` iterations."""
LABEL_VERSION = 3
"""Version of the label solvers' results; part of every label set's identity (1: SCA-MR default labels;
2: per-antenna WMMSE by projected gradient; 3: per-antenna WMMSE by ADMM + SQUAREM, chunks record convergence)."""


SIONNA_SOURCES = {"sionna-uma": "uma", "sionna-umi": "umi", "sionna-rma": "rma", "sionna-cdl": "cdl"}
_SCENARIO_DEFAULTS = {"carrier_frequency": 3.5e9, "gain_db": None}  # None: the scenario's cell-edge reference
SIONNA_DEFAULTS = {
    **{name: _SCENARIO_DEFAULTS for name in ("sionna-uma", "sionna-umi", "sionna-rma")},
    "sionna-cdl": {"carrier_frequency": 3.5e9, "delay_spread": 300e-9, "max_angle_deg": 60.0},
}
"""Parameters (with their defaults) of each Sionna source; ``sionna-cdl`` is CDL-C (other profiles:
:func:`jaxbeam.data.sionna_channels.sionna_cdl`)."""
SOURCES = (*CHANNELS, *SIONNA_SOURCES)
"""Channel sources of label sets: the functional core's (:data:`jaxbeam.core.channels.CHANNELS`) and Sionna's 3GPP
scenarios (:mod:`jaxbeam.data.sionna_channels`, the ``sionna`` extra)."""


def source_params(channel: str, args: dict | None) -> dict:
    """The full parameter record of label source ``channel`` (defaults updated by ``args``); ``ValueError`` for an
    unknown source or parameter."""
    if channel not in SOURCES:
        raise ValueError(f"channel must be one of {SOURCES}; got {channel!r}")
    if channel in CHANNELS:
        return channel_params(channel, **(args or {}))
    defaults = SIONNA_DEFAULTS[channel]
    if channel != "sionna-cdl":  # each scenario's own cell-edge normalisation, recorded in the identity
        from jaxbeam.data.sionna_channels import REFERENCE_GAIN_DB

        defaults = {**defaults, "gain_db": REFERENCE_GAIN_DB[SIONNA_SOURCES[channel]]}
    unknown = set(args or {}) - set(defaults)
    if unknown:
        raise ValueError(
            f"channel {channel!r} has no parameter(s) {sorted(unknown)}; its parameters: {sorted(defaults)}"
        )
    return {**defaults, **(args or {})}


def draw_source(channel: str, key, n: int, K: int, N: int, dtype, params: dict) -> jax.Array:
    """``n`` channels ``(n, K, N)`` of label source ``channel`` from ``key`` (Sionna: seeded by the key's bits)."""
    if channel in CHANNELS:
        return draw_channels(channel, key, (n,), K, N, dtype=dtype, **params)
    from jaxbeam.data.sionna_channels import sionna_cdl, sionna_channels

    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    if channel == "sionna-cdl":
        H = sionna_cdl(seed, n, K, N, **params)
    else:
        H = sionna_channels(SIONNA_SOURCES[channel], seed, n, K, N, **params)
    return jnp.asarray(H, dtype)


def label_solver(utility: str, solver: str, H, P, sigma2, Pc, tol):
    """The label beams of one batch and whether each sample met its solver's stop: ``W`` complex ``(B, K, N)``,
    ``converged`` bool ``(B,)`` (pure; jit it). The exact max-min solver converged where its certified bracket
    is within :data:`MAXMIN_GAP`."""
    if solver == "wmmse":
        W, info = solvers.wmmse(H, P, sigma2, tol=tol, return_info=True)
        return W, info["converged"]
    if solver == "exact":
        W, info = solvers.maxmin_exact(H, P, sigma2, return_info=True)
        return W, info["sinr_upper"] <= info["sinr"] * (1 + MAXMIN_GAP)
    if solver == "wmmse-antenna":  # P / N per antenna; its own stopping rule (tol 1e-4 stops it early)
        W, info = solvers.wmmse_antenna(H, P[..., None] / H.shape[-1], sigma2, return_info=True)
        return W, info["converged"]
    if solver == "wmmse-antenna-strict":  # monotone: run on, it only gains
        st = STRICT
        W, info = solvers.wmmse_antenna(
            H, P[..., None] / H.shape[-1], sigma2, tol=st["tol"], window=st["window"], max_iter=st["max_iter"],
            return_info=True,
        )  # fmt: skip
        return W, info["converged"]
    power = SOLVER_POWER[solver]
    W, info = solvers.sca(H, P, sigma2, utility, Pc, tol, power=power, return_info=True)
    if solver != "sca-antenna-strict":
        return W, info["converged"]
    # on from the plain run's beams; SCA's steps are not monotone, so keep the better of the two per sample
    st = STRICT
    W2, info2 = solvers.sca(
        H, P, sigma2, utility, Pc, st["tol"], init=W, max_iter=st["max_iter"], patience=st["patience"], power=power,
        return_info=True,
    )  # fmt: skip
    better = utility_fn(utility, H, W2, sigma2, Pc) >= utility_fn(utility, H, W, sigma2, Pc)
    return jnp.where(better[..., None, None], W2, W), info2["converged"]


def label_config(
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
    channel: str = "rayleigh",
    channel_args: dict | None = None,
) -> dict:
    """The identity of the label set :func:`generate_labels` makes with these arguments (validated).

    A dict of :data:`jaxbeam.data.format.IDENTITY_FIELDS`: everything that determines the labels (the chunk size
    too: it fixes which channels are drawn). Raises ``ValueError`` naming a bad argument.
    """
    if utility not in TASKS:
        raise ValueError(f"utility must be one of {TASKS}; got {utility!r}")
    solver = DEFAULT_SOLVER[utility] if solver is None else solver
    if solver not in SOLVERS[utility]:
        raise ValueError(f"solver for utility {utility!r} must be one of {SOLVERS[utility]}; got {solver!r}")
    for name, v in (("K", K), ("N", N), ("samples", samples), ("chunk_size", chunk_size)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int; got {seed!r}")
    P_levels = [float(p) for p in P_levels]
    if not P_levels or any(not p > 0 for p in P_levels):
        raise ValueError(f"P_levels must be a non-empty list of positive powers; got {P_levels!r}")
    for name, v in (("sigma2", sigma2), ("Pc", Pc), ("tol", tol)):
        if not float(v) > 0:
            raise ValueError(f"{name} must be > 0; got {v!r}")
    params = source_params(channel, channel_args)
    # recorded by name alone for i.i.d. Rayleigh (as before sources existed, so those identities hold)
    source = channel if channel == "rayleigh" else {"name": channel, **params}
    return {
        "utility": utility,
        "solver": solver,
        "tol": float(tol),
        "K": int(K),
        "N": int(N),
        "P": P_levels,
        "samples_per_level": int(samples),
        "seed": int(seed),
        "chunk_size": int(chunk_size),
        "sigma2": float(sigma2),
        "Pc": float(Pc),
        "channel": source,
        "dtype": str(jnp.zeros((), jnp.complex64).dtype),
        "label_version": LABEL_VERSION,
    }


def _chunk_name(level: int, index: int) -> str:
    return f"{level:03d}_{index:06d}.npz"


def _warn(message: str) -> None:
    print(f"jaxbeam labels: warning: {message}", file=sys.stderr, flush=True)


def _chunk_problem(path: Path, n: int, K: int, N: int) -> str | None:
    """Why the chunk file ``path`` cannot be used (None: it is complete and intact)."""
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        return "no checksum (the run stopped while writing it)"
    if file_sha256(path) != sidecar.read_text().strip():
        return "checksum mismatch (truncated or corrupted)"
    try:
        with np.load(path) as z:
            shapes = {k: z[k].shape for k in ("H", "W", "U", "converged")}
    except Exception as e:  # noqa: BLE001 (any unreadable archive: zipfile.BadZipFile, EOFError, KeyError, ...)
        return f"unreadable ({type(e).__name__})"
    if shapes != {"H": (n, K, N), "W": (n, K, N), "U": (n,), "converged": (n,)}:
        return f"unexpected shapes {shapes}"
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@functools.lru_cache(maxsize=32)
def _solve_chunk_fn(utility, solver, tol, mesh):
    """``solve(H, P, sigma2, Pc) -> (W, U)`` jitted over ``mesh``; one per solver set-up and mesh, so every label
    set of that set-up (any sigma2, Pc, P, seed, sample count) reuses its compiled chunk program."""
    data = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    def solve(H, P, sigma2, Pc):
        W, converged = label_solver(utility, solver, H, P, sigma2, Pc, tol)
        return W, utility_fn(utility, H, W, sigma2, Pc), converged

    return jax.jit(solve, in_shardings=(data, data, repl, repl), out_shardings=(data, data, data))


def _finished(out: Path, config: dict) -> LabelSet | None:
    """The finished set in ``out`` if there is one with this identity (None: none, or it was corrupted)."""
    if not (out / "meta.json").is_file():
        return None
    try:
        labels = load_labels(out)
    except ValueError as e:
        _warn(f"{e}; regenerating {out}")
        for name in ("meta.json", "H.npy", "W.npy", "P.npy", "U.npy", "split.npy"):
            (out / name).unlink(missing_ok=True)
        return None
    check_identity(label_identity(labels.meta), config, f"the finished label set {out}")
    shutil.rmtree(out / "chunks", ignore_errors=True)  # left over by a run killed while cleaning up
    return labels


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
    channel: str = "rayleigh",
    channel_args: dict | None = None,
) -> LabelSet | None:
    """Make (or finish, or load when finished) a label data set in directory ``out``.

    Args:
      out: output directory (created; an unfinished run there is resumed, a finished one loaded).
      utility: ``"sr"``, ``"mr"`` or ``"ee"``.
      K, N: users and transmit antennas.
      P_levels: power budgets [W]; ``samples`` samples are made for each.
      samples: samples per power level.
      seed: channel seed (and the split's seed).
      sigma2: noise power [W]; Pc: circuit power [W] (EE).
      tol: solver convergence tolerance (the paper's 1e-4; the exact max-min solver has its own stop).
      solver: ``"wmmse"`` or ``"sca"`` (SR), ``"exact"`` (the max-min optimum, :func:`jaxbeam.maxmin_exact`) or
        ``"sca"`` (MR),
        ``"sca"`` (EE); ``"wmmse-antenna"`` (SR) and ``"sca-antenna"`` (any utility) under per-antenna budgets
        ``P / N`` (:data:`SOLVERS`); default :data:`DEFAULT_SOLVER`.
      chunk_size: samples per chunk (one jit call; the unit of resume; it fixes the channels drawn).
      devices: devices to shard each chunk over (default all local devices).
      progress: show a tqdm progress bar (samples/s and ETA).
      max_chunks: stop after solving this many new chunks and return None (for tests of resume).
      channel: the channel source, a name of :data:`SOURCES` (default i.i.d. Rayleigh; ``sionna-*`` need the
        ``sionna`` extra); ``channel_args`` its parameters (the source's defaults otherwise). Source and
        parameters are part of the set's identity and ``meta.json``.

    Returns:
      the finished :class:`jaxbeam.data.format.LabelSet` as loaded from ``out`` (meta with checksums), or None if
      stopped early.

    Raises:
      ValueError: a bad argument, or ``out`` holds a set (finished or not) made with other settings; the
        message names the differing fields.
    """
    config = label_config(
        utility,
        K,
        N,
        P_levels,
        samples,
        seed,
        sigma2=sigma2,
        Pc=Pc,
        tol=tol,
        solver=solver,
        chunk_size=chunk_size,
        channel=channel,
        channel_args=channel_args,
    )
    params = source_params(channel, channel_args)
    solver, P_levels = config["solver"], config["P"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done_set = _finished(out, config)
    if done_set is not None:
        return done_set
    chunks = out / "chunks"
    chunks.mkdir(parents=True, exist_ok=True)
    dtype = jnp.zeros((), jnp.complex64).dtype
    cfg_path = chunks / "config.json"
    try:
        old = json.loads(cfg_path.read_text()) if cfg_path.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        _warn(f"{cfg_path} is corrupted; discarding the unfinished chunks")
        shutil.rmtree(chunks)
        chunks.mkdir()
        old = None
    if old is not None:
        check_identity(old, config, f"{out} holds an unfinished run that")
    else:
        _write_atomic(cfg_path, json.dumps(config, indent=2, sort_keys=True).encode())

    devices = list(jax.local_devices()) if devices is None else list(devices)
    mesh = jax.sharding.Mesh(np.asarray(devices), ("data",))
    solve = _solve_chunk_fn(utility, solver, float(tol), mesh)
    n_dev = len(devices)
    padded = -(-chunk_size // n_dev) * n_dev
    n_chunks = -(-samples // chunk_size)
    plan = [(lv, j) for lv in range(len(P_levels)) for j in range(n_chunks)]
    size = lambda j: min(chunk_size, samples - j * chunk_size)
    todo = []
    for lv, j in plan:
        path = chunks / _chunk_name(lv, j)
        if not path.is_file():
            todo.append((lv, j))
            continue
        problem = _chunk_problem(path, size(j), K, N)
        if problem is not None:
            _warn(f"chunk {path} {problem}; re-solving it")
            path.unlink()
            todo.append((lv, j))
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
            k = jax.random.fold_in(jax.random.fold_in(key, lv), j)
            H = draw_source(channel, k, chunk_size, K, N, dtype, params)
            H = jnp.concatenate([H, jnp.broadcast_to(H[:1], (padded - chunk_size,) + H.shape[1:])])
            P = jnp.full((padded,), P_levels[lv], H.real.dtype)
            W, U, conv = solve(H, P, jnp.asarray(sigma2, P.dtype), jnp.asarray(Pc, P.dtype))
            arrays = {"H": np.asarray(H[:n]), "W": np.asarray(W[:n]), "U": np.asarray(U[:n])}
            arrays["converged"] = np.asarray(conv[:n])
            path = chunks / _chunk_name(lv, j)
            tmp = chunks / f".{path.name}.tmp"
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            digest = file_sha256(tmp)
            os.replace(tmp, path)
            _write_atomic(path.with_name(path.name + ".sha256"), digest.encode())
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()

    Hs, Ws, Us, Ps, Cs = [], [], [], [], []
    for lv, j in plan:
        with np.load(chunks / _chunk_name(lv, j)) as z:
            Hs.append(z["H"])
            Ws.append(z["W"])
            Us.append(z["U"])
            Cs.append(z["converged"])
        Ps.append(np.full(size(j), P_levels[lv], np.float32))
    U = np.concatenate(Us).astype(np.float32)
    P_all = np.concatenate(Ps)
    conv = np.concatenate(Cs).astype(bool)
    meta = {
        **config,
        "samples": int(total),
        "constraint": CONSTRAINT_TEXT[SOLVER_POWER[solver]],
        "converged": {
            "samples": int(conv.sum()),
            "share": float(conv.mean()),
            "per_level": {str(p): float(conv[P_all == np.float32(p)].mean()) for p in P_levels},
        },
        "mean_utility": {str(p): float(U[P_all == np.float32(p)].mean()) for p in P_levels},
        "mean_utility_all": float(U.mean()),
        "package_version": __version__,
        "jax_version": jax.__version__,
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
    return load_labels(out)


__all__ = [
    "DEFAULT_SOLVER",
    "LABEL_VERSION",
    "SOLVERS",
    "SOLVER_POWER",
    "generate_labels",
    "SOURCES",
    "label_config",
    "label_solver",
]
