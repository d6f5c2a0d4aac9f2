"""Paper 002 Fig. 7: MT-SAO-lift (lifted auxiliary channel, eq. 10) against MT-SAO (eq. 11) over N.

    python -m experiments.sao_fig7_lift --preset cpu

002 fixes K = 40 and sweeps N; its text says SAO-lift is better, most clearly when heavily overloaded
(K >> N), and the two are close at N >= K. Here K = 16 on ``cpu``; both models train with the same budget.
"""

from __future__ import annotations

from experiments.report import Report
from experiments.sao_common import fmt, plot_lines, run_sao_experiment


def body(ctx) -> Report:
    K = ctx.systems.fixed_K
    models = {"lift": ctx.model("default"), "sao": ctx.model("nolift", lift=False)}
    rows, raw = [], []
    for N in ctx.systems.antennas:
        r = ctx.point(K, N, models)
        raw.append(r)
        rows.append([N, fmt(r["lift"]), fmt(r["sao"]), fmt(r["rzf"]), fmt(r["zf"]), fmt(r["wmmse"])])
        rows[-1] += [r["lift_pct"], r["sao_pct"], r["rzf_pct"]]
    header = ["N", "MT-SAO-lift", "MT-SAO", "LMMSE", "ZF", "WMMSE", "lift %", "SAO %", "LMMSE %"]

    def plot(path):
        x = [r["N"] for r in raw]
        series = {"MT-SAO-lift": [r["lift"] for r in raw], "MT-SAO": [r["sao"] for r in raw]}
        series.update({"LMMSE": [r["rzf"] for r in raw], "WMMSE": [r["wmmse"] for r in raw]})
        plot_lines(path, x, series, "antennas N", f"Fig. 7 (002): SAO-lift vs SAO, K = {K}")

    notes = f"Mean sum rate [bit/s/Hz] at K = {K}; % columns against WMMSE (tol 1e-5) on the same channels."
    return Report("Paper 002 Fig. 7: MT-SAO-lift against MT-SAO", header, rows, raw, notes, plot)


def main(argv=None):
    return run_sao_experiment("sao_fig7_lift", __doc__, body, argv)


if __name__ == "__main__":
    main()
