"""Paper 002 Fig. 6: one masked model (MT-SAO-lift) against dedicated models (DT-SAO-lift) per K.

    python -m experiments.sao_fig6_dedicated --preset cpu

002 fixes N = 28 and compares, over K, one MT-SAO-lift model (trained over the whole (K, N) curriculum)
with DT-SAO-lift models, each trained and tested at one (K, N) only; its text says the masked model matches
or beats the dedicated ones. Here N = 12 on ``cpu``. A dedicated model has K_m = K, N_m = N (no padding),
one curriculum stage, and as many training steps as the masked model (its one stage repeated).
"""

from __future__ import annotations

from experiments.report import Report
from experiments.sao_common import fmt, plot_lines, run_sao_experiment


def dedicated(ctx, K: int, N: int):
    base = ctx.config()
    return ctx.model(
        f"dt{K}x{N}",
        max_users=K,
        max_antennas=N,
        K_schedule=(K,),
        N_schedule=(N,),
        stage_epochs=base.stage_epochs * len(base.stages),
        replay=0,
    )


def body(ctx) -> Report:
    N = ctx.systems.fixed_N
    masked = ctx.model("default")
    rows, raw = [], []
    for K in ctx.systems.users:
        r = ctx.point(K, N, {"mt": masked, "dt": dedicated(ctx, K, N)})
        raw.append(r)
        rows.append([K, fmt(r["mt"]), fmt(r["dt"]), fmt(r["rzf"]), fmt(r["zf"]), fmt(r["wmmse"])])
        rows[-1] += [r["mt_pct"], r["dt_pct"], r["rzf_pct"]]
    header = ["K", "MT-SAO-lift", "DT-SAO-lift", "LMMSE", "ZF", "WMMSE", "MT %", "DT %", "LMMSE %"]

    def plot(path):
        x = [r["K"] for r in raw]
        series = {"MT-SAO-lift": [r["mt"] for r in raw], "DT-SAO-lift": [r["dt"] for r in raw]}
        series.update({"LMMSE": [r["rzf"] for r in raw], "WMMSE": [r["wmmse"] for r in raw]})
        plot_lines(path, x, series, "users K", f"Fig. 6 (002): masked vs dedicated models, N = {N}")

    notes = f"Mean sum rate [bit/s/Hz] at N = {N}; % columns against WMMSE (tol 1e-5) on the same channels."
    return Report("Paper 002 Fig. 6: one masked model against dedicated models", header, rows, raw, notes, plot)


def main(argv=None):
    return run_sao_experiment("sao_fig6_dedicated", __doc__, body, argv)


if __name__ == "__main__":
    main()
