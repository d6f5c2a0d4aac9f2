"""Low-rank adapters (:mod:`jaxbeam.models.lora`) on disk, apart from the base checkpoint.

:func:`save_adapters` writes them with their config, a digest of their arrays and the digest of the base
parameters they were trained on; :func:`load_adapters` refuses them for another base, a corrupted file or
a config they do not fit.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import jax
import numpy as np

from jaxbeam.jobs.runs import params_digest
from jaxbeam.models import lora

ADAPTER_FILE, ADAPTER_META = "adapters.npz", "adapters.json"


def save_adapters(directory: str | Path, adapters, config: lora.LoRAConfig, base) -> Path:
    """Write ``adapters`` to ``directory`` (``adapters.npz`` + ``adapters.json`` with the config, the base's
    digest and the arrays' own), atomically: a kill leaves the previous files or none. Files that already
    hold these adapters are left untouched (reopening a finished run writes nothing)."""
    d = Path(directory)
    meta = {
        "config": dataclasses.asdict(config),
        "base": params_digest(base),
        "arrays": params_digest(adapters),
        "parameters": lora.count(adapters),
    }
    try:
        if json.loads((d / ADAPTER_META).read_text()) == json.loads(json.dumps(meta)):
            load_adapters(d, base)  # the arrays on disk pass their digest
            return d
    except (OSError, ValueError):
        pass  # missing, another version or corrupted: write them
    d.mkdir(parents=True, exist_ok=True)
    flat = {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_flatten_with_path(adapters)[0]}
    tmp = d / (ADAPTER_FILE + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **flat)
    os.replace(tmp, d / ADAPTER_FILE)
    tmp = d / (ADAPTER_META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, d / ADAPTER_META)
    return d


def load_adapters(directory: str | Path, base) -> tuple[dict, lora.LoRAConfig]:
    """The adapters and config saved in ``directory`` for ``base``.

    Raises:
      ValueError: nothing readable there, the arrays fail their CRC, or they were trained on another base
        model (its digest differs) or do not fit it.
    """
    d = Path(directory)
    try:
        meta = json.loads((d / ADAPTER_META).read_text())
        config = lora.LoRAConfig(**{**meta["config"], "targets": tuple(meta["config"]["targets"])})
        with np.load(d / ADAPTER_FILE) as z:
            flat = {k: z[k] for k in z.files}
    except (FileNotFoundError, KeyError, TypeError, ValueError, OSError) as e:
        raise ValueError(f"{d} holds no readable adapters ({type(e).__name__}: {e})") from None
    if meta["base"] != params_digest(base):
        raise ValueError(f"the adapters in {d} were trained on another base model (digest {meta['base']}, "
                         f"this one {params_digest(base)})")  # fmt: skip
    template = jax.eval_shape(lambda: lora.init(jax.random.key(0), base, config))
    paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(template)[0]]
    if sorted(paths) != sorted(flat):
        raise ValueError(f"the adapters in {d} do not fit this model and their config")
    adapters = jax.tree.unflatten(jax.tree.structure(template), [flat[p] for p in paths])
    if meta["arrays"] != params_digest(adapters):
        raise ValueError(f"{d / ADAPTER_FILE} fails its digest (corrupted)")
    lora.check(base, adapters, config)
    return adapters, config
