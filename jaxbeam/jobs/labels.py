"""Cached label sets of the jobs: ``<root>/labels/<utility>_<K>x<N>_s<seed>-<hash>``.

``<hash>`` is the :func:`jaxbeam.data.format.fingerprint` of the set's identity
(:func:`jaxbeam.data.generate.label_config`: solver, tolerance, K, N, P levels, samples, seed, sigma2, Pc,
channel source, dtype, label-solver version), so other settings regenerate into another path; the stored
``meta.json`` is checked on load. Generation is chunked and resumable (:func:`jaxbeam.data.generate_labels`).
"""

from __future__ import annotations

from pathlib import Path

from jaxbeam.configs import Config
from jaxbeam.data.format import LabelSet, fingerprint
from jaxbeam.data.generate import generate_labels, label_config


def labels_for(
    root: Path, cfg: Config, utility: str, K: int, samples: int, seed: int, progress=True, *, N: int | None = None
) -> LabelSet:
    """The cached label set ``root/labels/<utility>_<K>x<N>_s<seed>-<hash>`` (made or finished if needed).

    ``N`` defaults to the preset's; P, sigma2 and Pc are the preset's; solver and tolerance the defaults of
    :func:`jaxbeam.data.generate.generate_labels`. ``<hash>`` keys the path by the set's whole identity.
    """
    sy = cfg.system
    N = sy.N if N is None else N
    ident = label_config(utility, K, N, sy.P, samples, seed, sigma2=sy.sigma2, Pc=sy.Pc)
    path = Path(root) / "labels" / f"{utility}_{K}x{N}_s{seed}-{fingerprint(ident)}"
    if progress and not (path / "meta.json").is_file():
        print(f"labels: {utility.upper()} at (K, N) = ({K}, {N}), P = {list(sy.P)}, {samples} per P -> {path}")
    return generate_labels(path, utility, K, N, sy.P, samples, seed, sigma2=sy.sigma2, Pc=sy.Pc, progress=progress)
