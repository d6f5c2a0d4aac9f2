"""Paper 002 Fig. 8: sum rate against K for MT-SAO-lift and the baselines that jaxbeam has.

    python -m experiments.sao_fig8_baselines --preset cpu

002 fixes N = 28 and compares MT-SAO-lift with WMMSE, three learned baselines (Graph Transformer, HPE
Transformer, LLM-adapter; not in jaxbeam, so not here) and an online gradient-based optimiser (RNN). Here
N = 12 on ``cpu``, against LMMSE, ZF, WMMSE (tol 1e-5), the model's own gradient steps without the network
("steps only": LMMSE + T x Q_i steps) and plain projected gradient ascent from LMMSE with 100 steps
(``jb.refine``, the online optimiser without learning), all on the same held-out channels.
"""

from __future__ import annotations

import numpy as np

import jaxbeam as jb
from experiments.report import Report
from experiments.sao_common import fmt, plot_lines, run_sao_experiment

ONLINE_STEPS = {"paper": 100, "cpu": 100, "smoke": 5}


def body(ctx) -> Report:
    N = ctx.systems.fixed_N
    cfg, params = ctx.model("default")
    models = {"sao": (cfg, params), "steps": (cfg, ctx.untrained_params(cfg))}
    q = ONLINE_STEPS[ctx.preset]
    rows, raw = [], []
    for K in ctx.systems.users:
        r = ctx.point(K, N, models)
        H = ctx.channels(K, N)
        W = jb.refine(H, jb.rzf(H, cfg.P, cfg.sigma2), cfg.P, cfg.sigma2, "sr", q)
        r["online"] = float(np.mean(jb.sum_rate(H, W, cfg.sigma2)))
        r["online_pct"] = 100.0 * r["online"] / r["wmmse"]
        raw.append(r)
        rows.append([K, *(fmt(r[k]) for k in ("sao", "steps", "online", "rzf", "zf", "wmmse"))])
        rows[-1] += [r["sao_pct"], r["steps_pct"], r["online_pct"], r["rzf_pct"]]
        rows[-1] += [f"{r['samples'] / r['sao_seconds']:,.0f}", f"{r['samples'] / r['wmmse_seconds']:,.0f}"]
        k = r["sao_matched_k"]
        rows[-1] += ["none <= 50" if k is None else f"WMMSE-{k}: {r['samples'] / r['sao_matched_seconds']:,.0f}"]
    header = ["K", "MT-SAO-lift", "steps only", f"GA {q} steps", "LMMSE", "ZF", "WMMSE"]
    header += ["SAO %", "steps %", "GA %", "LMMSE %", "SAO [samples/s]", "WMMSE [samples/s]"]
    header += ["cheapest WMMSE-k >= SAO [samples/s]"]

    def plot(path):
        x = [r["K"] for r in raw]
        names = {"sao": "MT-SAO-lift", "steps": "steps only", "online": f"GA, {q} steps"}
        series = {label: [r[k] for r in raw] for k, label in names.items()}
        series.update({"LMMSE": [r["rzf"] for r in raw], "ZF": [r["zf"] for r in raw]})
        series["WMMSE"] = [r["wmmse"] for r in raw]
        plot_lines(path, x, series, "users K", f"Fig. 8 (002): against the baselines, N = {N}")

    notes = (
        f"Mean sum rate [bit/s/Hz] at N = {N}, 20 dB; % columns against WMMSE (tol 1e-5) on the same channels; "
        "samples/s of the model and WMMSE at batch 256, compile excluded. 002's learned baselines (Graph "
        "Transformer, HPE Transformer, LLM-adapter, RNN optimiser) are not implemented in jaxbeam."
    )
    return Report("Paper 002 Fig. 8: MT-SAO-lift against the baselines", header, rows, raw, notes, plot)


def main(argv=None):
    return run_sao_experiment("sao_fig8_baselines", __doc__, body, argv)


if __name__ == "__main__":
    main()
