"""All orbax-checkpoint calls of jaxbeam (so a move to the orbax v1 API touches one file).

Layout of a run directory::

    WORKDIR/config.json                  the run's configuration (JSON)
    WORKDIR/checkpoints/<step>/arrays/   train state + best-so-far parameters (orbax StandardSave)
    WORKDIR/checkpoints/<step>/meta/     JSON: best metric and epoch, train seconds, history, CRC-32 of
                                         every array (orbax JsonSave)
    WORKDIR/metrics.jsonl                the metrics log (written by the fit loop, not here)

One checkpoint per step holds everything a resume needs (latest state *and* best parameters), so there
is no pair of checkpoints that a kill could leave out of step with each other. Orbax writes a step into a
temporary directory and renames it when complete; temporary directories left by a kill are removed when
the next run opens the directory. The two newest steps are kept.

Every reader (a resume, :meth:`Checkpointer.restore`; :func:`load_params`, and through it ``jaxbeam evaluate``,
``jaxbeam finetune`` and the job loaders) opens a run through :func:`_newest_readable`: the newest step whose
files read back and whose arrays match the CRC-32s stored with them; a newer step that fails is named in a
warning (and deleted by a resume), and when no step is readable :class:`CheckpointError` names the directory.
A step's files are read back synchronously before orbax opens it, so a truncated or missing file is caught
there: orbax's concurrent reads, abandoned at their first error, would leave tracebacks on stderr.

Saves are asynchronous; :meth:`Checkpointer.wait` (called by :meth:`Checkpointer.close`) blocks until
they are on disk. In multi-process runs every process must call :meth:`Checkpointer.save` and
:meth:`Checkpointer.restore` with the same step (orbax synchronises them).
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import json
import logging
import os
import shutil
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorstore as ts

CHECKPOINTS = "checkpoints"
KEEP = 2


class CheckpointError(RuntimeError):
    """A run directory's checkpoints are missing, unreadable or corrupt (the message names the path)."""


def _manager(path: Path, *, read_only: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None if read_only else KEEP,
        save_interval_steps=0 if read_only else 1,
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
    )
    with _quiet():  # orbax logs a warning for every read-only manager
        return ocp.CheckpointManager(path, options=options)


def _abstract(x):
    """jax arrays -> ``ShapeDtypeStruct`` with their sharding (restored placed like them); numpy arrays stay
    numpy arrays (restored as numpy, keeping e.g. float64 values exact without ``jax_enable_x64``)."""
    if isinstance(x, jax.Array | jax.ShapeDtypeStruct):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None))
    return np.asarray(x)


def _key(entry) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def checksums(tree: Any) -> dict[str, int]:
    """CRC-32 of every leaf's bytes (host copy), keyed by its tree path as ``"a/0/mu"`` (the same for a
    tuple or named tuple and for the dict orbax restores it as without a target)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        x = np.ascontiguousarray(np.asarray(leaf))
        out["/".join(_key(e) for e in path)] = zlib.crc32(x.reshape(-1).view(np.uint8)) if x.size else 0
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


def _sync(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


class Checkpointer:
    """The checkpoints of one run in ``workdir`` (layout in the module docstring).

    Args:
      workdir: run directory (created).
      config: optional JSON-serialisable configuration written to ``workdir/config.json``.
    """

    def __init__(self, workdir: str | os.PathLike, *, config: dict | None = None):
        self.workdir = Path(workdir).absolute()
        self.directory = self.workdir / CHECKPOINTS
        self.workdir.mkdir(parents=True, exist_ok=True)
        if config is not None and jax.process_index() == 0:
            tmp = self.workdir / ".config.json.tmp"
            tmp.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
            os.replace(tmp, self.workdir / "config.json")
        self._mngr = _manager(self.directory)

    def steps(self) -> list[int]:
        """Steps with a complete checkpoint on disk, oldest first."""
        return sorted(self._mngr.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, arrays: Any, meta: dict) -> None:
        """Save ``arrays`` (a pytree of arrays) and ``meta`` (JSON) as the checkpoint of ``step``, in the
        background. A step already on disk (left by an earlier, killed run) is replaced."""
        step = int(step)
        if step in self._mngr.all_steps():
            self._delete(step)
        meta = {**meta, "step": step, "crc32": checksums(arrays)}
        self._mngr.save(
            step, args=ocp.args.Composite(arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta))
        )

    def restore(self, target: Any) -> tuple[int, Any, dict] | None:
        """The newest readable checkpoint as ``(step, arrays, meta)``, restored into the structure (and
        shardings) of ``target`` (arrays or ``jax.ShapeDtypeStruct`` s); None if there is none.

        Unreadable or corrupt steps newer than the one restored are deleted (with a warning).

        Raises:
          CheckpointError: there are checkpoints but none is readable.
        """
        self.wait()
        return _newest_readable(self._mngr, self.directory, target, delete=self._delete)

    def _delete(self, step: int) -> None:
        self.wait()
        if jax.process_index() == 0:
            shutil.rmtree(self.directory / str(step), ignore_errors=True)
        _sync(f"jaxbeam_delete_{step}")
        self._mngr.reload()

    def wait(self) -> None:
        self._mngr.wait_until_finished()

    def close(self) -> None:
        self.wait()
        self._mngr.close()


_NOISE = (
    ("asyncio", ("Task exception was never retrieved", "Future exception was never retrieved")),
    ("absl", ("Given directory is read only",)),
)


class _DropNoise(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


@contextlib.contextmanager
def _quiet():
    """Keep what orbax's abandoned concurrent reads leave behind off stderr: asyncio's "exception was never
    retrieved" records, "Event loop is closed" raised in tensorstore's callbacks and the errors of collected
    coroutines (each a traceback; the failure itself is reported once, by the caller). Call ``gc.collect()``
    inside after a failure: abandoned tasks report when they are collected."""
    filters = [(logging.getLogger(name), _DropNoise(prefixes)) for name, prefixes in _NOISE]
    for logger, f in filters:
        logger.addFilter(f)
    hook = sys.unraisablehook

    def unraisable(u):
        closed = isinstance(u.exc_value, RuntimeError) and str(u.exc_value) == "Event loop is closed"
        if not (closed or inspect.iscoroutine(u.object)):
            hook(u)

    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for logger, f in filters:
            logger.removeFilter(f)


def _read_back(arrays: Path) -> None:
    """Read every value of a step's OCDBT array store back, synchronously, 64 at a time: a truncated or
    missing file raises here (``ValueError``) before orbax opens the step."""
    if not (arrays / "manifest.ocdbt").is_file():
        return  # not an OCDBT store: orbax's own reads decide
    kv = ts.KvStore.open({"driver": "ocdbt", "base": {"driver": "file", "path": f"{arrays}/"}}).result()
    keys = kv.list().result()
    for i in range(0, len(keys), 64):
        for read in [kv.read(k) for k in keys[i : i + 64]]:
            read.result()


def _newest_readable(
    mngr: ocp.CheckpointManager, directory: Path, target: Any = None, *, delete=None
) -> tuple[int, Any, dict] | None:
    """The newest step under ``directory`` whose files read back and whose arrays match their CRC-32s, as
    ``(step, arrays, meta)``; None if there is no step. The one reader of checkpoints.

    Args:
      mngr: the orbax manager of ``directory``.
      target: restore into this structure (and shardings); None: as saved, as numpy arrays.
      delete: called with each unreadable step newer than the one returned (a resume deletes them); each is
        named in a warning.

    Raises:
      CheckpointError: there are steps but none is readable (naming ``directory`` and the newest's error).
    """
    steps = sorted(mngr.all_steps())
    if not steps:
        return None
    item = None if target is None else jax.tree.map(_abstract, target)
    failures = []
    with _quiet():
        for step in reversed(steps):
            where = directory / str(step)
            try:
                _read_back(where / "arrays")
                out = mngr.restore(
                    step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(item), meta=ocp.args.JsonRestore())
                )
                arrays = out["arrays"] if target is not None else jax.tree.map(np.asarray, out["arrays"])
                _verify(arrays, out["meta"], where)
                break
            except Exception as e:  # noqa: BLE001 (any failure to read a step means: try the previous one)
                failures.append((step, e))
                gc.collect()
        else:
            step, e = failures[0]
            hint = "; delete the run directory to start afresh" if delete is not None else ""
            raise CheckpointError(
                f"no readable checkpoint under {directory}: newest {directory / str(step)} ({_first_line(e)}){hint}"
            ) from e
    for bad, e in failures:
        then = f"deleted, resuming from step {step}" if delete is not None else f"loaded step {step}"
        warnings.warn(f"checkpoint {directory / str(bad)} is unreadable ({_first_line(e)}); {then}", stacklevel=3)
        if delete is not None:
            delete(bad)
    return step, arrays, dict(out["meta"])


def _verify(arrays: Any, meta: dict, where: Path) -> None:
    if not isinstance(meta, dict) or "crc32" not in meta:
        raise CheckpointError(f"{where / 'meta'} has no checksums")
    got, want = checksums(arrays), meta["crc32"]
    if set(got) != set(want):
        raise CheckpointError(f"{where / 'arrays'} holds other arrays than its checksums list")
    bad = [k for k in got if got[k] != want[k]]
    if bad:
        raise CheckpointError(f"{where / 'arrays'}: checksum mismatch in {bad[0]} (and {len(bad) - 1} more)")


def _legacy_params(workdir: Path, which: str) -> Any:
    """Parameters of a run directory in the layout before ``checkpoints/`` (``best/``, ``latest/``)."""
    path = workdir / which
    mngr, step = _manager(path, read_only=True), None
    try:
        step = mngr.latest_step()
        if step is None:
            raise FileNotFoundError(f"no {which!r} checkpoint under {workdir}")
        with _quiet():
            try:
                item = mngr.restore(step, args=ocp.args.StandardRestore())
            except Exception:
                gc.collect()
                raise
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"checkpoint {path / str(step)} is unreadable ({_first_line(e)})") from e
    finally:
        mngr.close()
    return item["state"]["params"] if which == "latest" else item


def load_params(workdir: str | os.PathLike, *, which: str = "best") -> Any:
    """The parameters saved by a run: ``which="best"`` (validation) or ``"latest"`` (end of training), from
    its newest readable checkpoint (checksums verified; an unreadable newest one falls back to the one before).

    Returns a pytree of numpy arrays (load onto devices with ``jax.device_put``).

    Raises:
      ValueError: ``which`` is neither ``"best"`` nor ``"latest"``.
      FileNotFoundError: ``workdir`` holds no checkpoint.
      CheckpointError: it holds checkpoints, but none is readable.
    """
    if which not in ("best", "latest"):
        raise ValueError(f"which must be 'best' or 'latest'; got {which!r}")
    workdir = Path(workdir).absolute()
    directory = workdir / CHECKPOINTS
    if not directory.is_dir():
        if (workdir / which).is_dir():
            return jax.tree.map(np.asarray, _legacy_params(workdir, which))
        raise FileNotFoundError(f"no checkpoint under {workdir}")
    mngr = _manager(directory, read_only=True)
    try:
        found = _newest_readable(mngr, directory)
    finally:
        mngr.close()
    if found is None:
        raise FileNotFoundError(f"no checkpoint under {workdir}")
    arrays = found[1]
    return arrays["best_params"] if which == "best" else arrays["state"]["params"]


def load_config(workdir: str | os.PathLike) -> dict:
    """The ``config.json`` written beside a run's checkpoints."""
    return json.loads((Path(workdir) / "config.json").read_text())
