"""Per-antenna SNR of Sionna's TR 38.901 users: ``python -m benchmarks.sionna_snr [--quick]``.

For UMa, UMi and RMa at jaxbeam's defaults (:func:`jaxbeam.data.sionna_channels.sionna_channels`: 3.5 GHz, 38.901
BS elements, random user orientations, the scenario's indoor share and shadowing), ``--users`` users per
scenario (each its own drop: the per-user statistics of K-user drops, drawn faster), N = 8 antennas. The
per-antenna SNR of user k is ``P |h_k|^2 / (N sigma2)`` at ``P / sigma2 = 10 dB`` (P = 1, sigma2 = 0.1): its
percentiles (5 / 25 / 50 / 75 / 95 %) and the share below 0 dB, with the old normalisation (120 dB for every
scenario) and the new one (:data:`~jaxbeam.data.sionna_channels.REFERENCE_GAIN_DB`, the same channels rescaled).

The reference re-measured: the median per-antenna gain of the cell-edge users (2D distance within 5 % of
:data:`~jaxbeam.data.sionna_channels.CELL_EDGE_M`, ISD / 2) against ``-REFERENCE_GAIN_DB``, and two parts of it
that 38.901's path-loss formulas leave out, on ``--parts-users`` users redrawn with the same seed (the same
users and paths): the BS element's gain (38.901 pattern over omni) and the polarisation mismatch (random over
upright orientations), medians of the per-user ratios over the cell-edge users (10 % band).

Writes ``<out>/sionna_snr.md`` and ``<out>/sionna_snr.json`` (header: date, git commit, machine, command).
Needs the ``sionna`` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._results import header
from jaxbeam.data import sionna_channels as sc
from jaxbeam.jobs.report import markdown_table

OLD_GAIN_DB = 120.0
"""The normalisation before "Trust, second pass" #7: the same gain for every scenario [dB]."""
SNR_DB = 10.0
"""``P / sigma2`` [dB] of the table (P = 1, sigma2 = 0.1)."""
PERCENTILES = (5, 25, 50, 75, 95)
N = 8


def _gain_db(H: np.ndarray) -> np.ndarray:
    """Per-antenna gain ``10 log10(|h_k|^2 / N)`` [dB] of every user, flattened."""
    return 10 * np.log10(np.mean(np.abs(H.astype(np.complex128)) ** 2, -1)).ravel()


def _median(x: np.ndarray) -> float | None:
    return float(np.median(x)) if x.size else None


def snr_stats(snr_db: np.ndarray) -> dict:
    """Percentiles (``"p5"`` ...) and ``"below_0db"`` (share) of per-user SNRs [dB]."""
    out = {f"p{q}": float(np.percentile(snr_db, q)) for q in PERCENTILES}
    out["below_0db"] = float(np.mean(snr_db < 0))
    return out


def measure(scenario: str, users: int, parts_users: int, seed: int) -> dict:
    """SNR statistics before / after and the measured reference of one scenario (module docstring)."""
    ref = sc.REFERENCE_GAIN_DB[scenario]
    t0 = time.perf_counter()
    H, info = sc.sionna_channels(scenario, seed, users, 1, N, gain_db=0.0, return_topology=True)
    g = _gain_db(H)
    r = info["distance_2d"].ravel() / sc.CELL_EDGE_M[scenario]
    edge = np.abs(r - 1) < 0.05
    row = {
        "scenario": scenario,
        "users": users,
        "reference_gain_db": ref,
        "before": snr_stats(g + OLD_GAIN_DB + SNR_DB),
        "after": snr_stats(g + ref + SNR_DB),
        "edge_users": int(edge.sum()),
        "edge_median_gain_db": _median(g[edge]),
        "indoor_share": float(np.mean(info["indoor"])),
    }
    kw = dict(gain_db=0.0, return_topology=True)
    full, info = sc.sionna_channels(scenario, seed + 1, parts_users, 1, N, **kw)
    omni, _ = sc.sionna_channels(scenario, seed + 1, parts_users, 1, N, bs_pattern="omni", **kw)
    upright, _ = sc.sionna_channels(scenario, seed + 1, parts_users, 1, N, ut_orientation="aligned", **kw)
    band = np.abs(info["distance_2d"].ravel() / sc.CELL_EDGE_M[scenario] - 1) < 0.1
    full = _gain_db(full)
    row["element_gain_db"] = _median((full - _gain_db(omni))[band])
    row["polarisation_db"] = _median((full - _gain_db(upright))[band])
    row["seconds"] = time.perf_counter() - t0
    return row


def _header(argv: list[str]) -> dict:
    import sionna.phy
    import torch

    sionna_version = getattr(sionna.phy, "__version__", None) or _dist("sionna-no-rt")
    return header("benchmarks.sionna_snr", argv, sionna=sionna_version, torch=torch.__version__)


def _dist(name: str):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def render(head: dict, rows: list[dict], users: int, parts_users: int) -> str:
    """The markdown report."""
    lines = ["# Per-antenna SNR of the Sionna TR 38.901 scenarios", ""]
    lines += [f"- {k}: {v}" for k, v in head.items() if k != "versions"]
    lines += [f"- versions: {', '.join(f'{k} {v}' for k, v in head['versions'].items())}", ""]
    lines += [
        f"Per-antenna SNR `P |h_k|^2 / (N sigma2)` [dB] at `P / sigma2 = {SNR_DB:g} dB`, N = {N}, {users} users per "
        "scenario at the defaults (3.5 GHz, 38.901 BS elements, random orientations, the scenario's indoor share "
        f"and shadowing). Before: `gain_db = {OLD_GAIN_DB:g}` for every scenario; after: the scenario's "
        "`REFERENCE_GAIN_DB` (cell-edge normalisation), the same channels.",
        "",
    ]
    table = []
    for r in rows:
        for when, gain in (("before", OLD_GAIN_DB), ("after", r["reference_gain_db"])):
            s = r[when]
            table.append([r["scenario"].upper(), when, f"{gain:g}", *(f"{s[f'p{q}']:+.1f}" for q in PERCENTILES),
                          f"{100 * s['below_0db']:.0f} %"])  # fmt: skip
    lines += [markdown_table(["scenario", "", "gain_db", *(f"{q} %" for q in PERCENTILES), "< 0 dB"], table), ""]
    lines += [
        "The reference, measured: median per-antenna gain of the cell-edge users (2D distance within 5 % of "
        "ISD / 2) against `-REFERENCE_GAIN_DB`; the BS element's gain (38.901 over omni) and the polarisation "
        f"mismatch (random over upright users), medians of per-user ratios at the cell edge (10 % band, "
        f"{parts_users} users redrawn with one seed).",
        "",
    ]

    def db(v, sign=""):
        return "-" if v is None else format(v, f"{sign}.1f")  # None: no user in the band

    table = [
        [r["scenario"].upper(), f"{sc.CELL_EDGE_M[r['scenario']]:g}", r["edge_users"], db(r["edge_median_gain_db"]),
         f"{-r['reference_gain_db']:g}", db(r["element_gain_db"], "+"), db(r["polarisation_db"], "+"),
         f"{100 * r['indoor_share']:.0f} %"]
        for r in rows
    ]  # fmt: skip
    header = ["scenario", "ISD / 2 [m]", "edge users", "edge median [dB]", "-REFERENCE_GAIN_DB", "element [dB]"]
    lines += [markdown_table([*header, "polarisation [dB]", "indoor"], table), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=4000, help="users per scenario (SNR table, cell-edge median)")
    ap.add_argument("--parts-users", type=int, default=1000, help="users per scenario (element, polarisation)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="100 / 50 users (tests)")
    ap.add_argument("--out", default="results", help="folder of sionna_snr.md and sionna_snr.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.users, args.parts_users = 100, 50
    for name in ("users", "parts_users"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    head = _header(argv)
    rows = []
    for s in sc.SCENARIOS:
        rows.append(measure(s, args.users, args.parts_users, args.seed))
        print(f"{s}: {rows[-1]['seconds']:.0f} s", flush=True)
    text = render(head, rows, args.users, args.parts_users)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sionna_snr.md").write_text(text)
    payload = {**head, "snr_db": SNR_DB, "old_gain_db": OLD_GAIN_DB, "N": N, "rows": rows}
    (out / "sionna_snr.json").write_text(json.dumps(payload, indent=2))
    print(f"wrote {out / 'sionna_snr.md'} and {out / 'sionna_snr.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
