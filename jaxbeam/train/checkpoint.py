"""All orbax-checkpoint calls of jaxbeam (so a move to the orbax v1 API touches one file).

Layout of a run directory::

    WORKDIR/config.json        the run's configuration (JSON)
    WORKDIR/latest/<step>/     the newest checkpoint (for resume): train state + best-so-far params/metric
    WORKDIR/best/<step>/       the parameters with the best validation utility (for use / fine-tuning)
    WORKDIR/metrics.jsonl      the metrics log (written by the fit loop, not here)

Saves are asynchronous; :meth:`Checkpointer.wait` (called by :meth:`close`) blocks until they are on disk.
A save interrupted by a crash leaves the previous checkpoint intact (orbax writes to a temporary
directory and renames it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


def _manager(path: Path, *, read_only: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=not read_only, read_only=read_only)
    return ocp.CheckpointManager(path, options=options)


def _abstract(x):
    """jax arrays -> ``ShapeDtypeStruct`` with their sharding (restored placed like them); numpy arrays stay
    numpy arrays (restored as numpy, keeping e.g. float64 metrics exact without ``jax_enable_x64``)."""
    if isinstance(x, jax.Array):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return np.asarray(x)


class Checkpointer:
    """Latest (resume) and best (validation) checkpoints of one run in ``workdir``.

    Args:
      workdir: run directory (created).
      config: optional JSON-serialisable configuration written to ``workdir/config.json``.
    """

    def __init__(self, workdir: str | os.PathLike, *, config: dict | None = None):
        self.workdir = Path(workdir).absolute()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if config is not None and jax.process_index() == 0:
            tmp = self.workdir / ".config.json.tmp"
            tmp.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
            os.replace(tmp, self.workdir / "config.json")
        self._latest = _manager(self.workdir / "latest")
        self._best = _manager(self.workdir / "best")

    def latest_step(self) -> int | None:
        return self._latest.latest_step()

    def save_latest(self, step: int, item: Any) -> None:
        """Save ``item`` (a pytree of arrays) as the latest checkpoint at ``step``."""
        self._latest.save(int(step), args=ocp.args.StandardSave(item))

    def restore_latest(self, target: Any) -> Any:
        """Restore the latest checkpoint into the structure (and shardings) of ``target``.

        ``target`` may hold arrays or ``jax.ShapeDtypeStruct`` s (e.g. from ``jax.eval_shape``).
        """
        step = self._latest.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint under {self.workdir / 'latest'}")
        abstract = jax.tree.map(_abstract, target)
        return self._latest.restore(step, args=ocp.args.StandardRestore(abstract))

    def save_best(self, step: int, params: Any) -> None:
        """Save ``params`` as the best checkpoint (the previous best is deleted)."""
        self._best.save(int(step), args=ocp.args.StandardSave(params), force=True)

    def wait(self) -> None:
        self._latest.wait_until_finished()
        self._best.wait_until_finished()

    def close(self) -> None:
        self.wait()
        self._latest.close()
        self._best.close()


def load_params(workdir: str | os.PathLike, *, which: str = "best") -> Any:
    """The parameters saved by a run: ``which="best"`` (validation) or ``"latest"`` (end of training).

    Returns a pytree of numpy arrays (load onto devices with ``jax.device_put``).
    """
    if which not in ("best", "latest"):
        raise ValueError(f"which must be 'best' or 'latest'; got {which!r}")
    path = Path(workdir).absolute() / which
    if not path.is_dir():
        raise FileNotFoundError(f"no {which!r} checkpoint under {workdir}")
    mngr = _manager(path, read_only=True)
    step = mngr.latest_step()
    if step is None:
        raise FileNotFoundError(f"no {which!r} checkpoint under {workdir}")
    item = mngr.restore(step, args=ocp.args.StandardRestore())
    mngr.close()
    if which == "latest":
        item = item["state"]["params"]
    return jax.tree.map(np.asarray, item)


def load_config(workdir: str | os.PathLike) -> dict:
    """The ``config.json`` written beside a run's checkpoints."""
    return json.loads((Path(workdir) / "config.json").read_text())
