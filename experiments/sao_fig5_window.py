"""Paper 002 Fig. 5: MT-SAO-lift trained with sliding windows of W layers, sum rate against SNR.

    python -m experiments.sao_fig5_window --preset cpu

002 trains W in {1, 5, 10} (T = 10) and evaluates at (40, 28) over SNR; its text says W = 5 is best. Here
W in {1, 2, 4} on ``cpu`` (T = 4, default W = 2) at (16, 12). Every model is trained at the preset's
20 dB and evaluated at each SNR with that SNR's noise power in its LMMSE start, gradient steps and rates.
As in Algorithm 1 each window position trains one pass over the curriculum, so the budget grows with the
number of positions T - W + 1 (``cpu``: 3,840 steps for W = 1, 2,880 for W = 2, 960 for W = 4).
"""

from __future__ import annotations

from experiments.report import Report
from experiments.sao_common import fmt, plot_lines, run_sao_experiment

WINDOWS = {"paper": (1, 5, 10), "cpu": (1, 2, 4), "smoke": (1, 2)}
SNRS = {"paper": (0, 5, 10, 15, 20, 25, 30), "cpu": (0, 10, 20, 30), "smoke": (10, 20)}


def body(ctx) -> Report:
    K, N = ctx.systems.overloaded
    models = {f"W={w}": ctx.model(f"w{w}", window=w) for w in WINDOWS[ctx.preset]}
    rows, raw = [], []
    for snr in SNRS[ctx.preset]:
        r = ctx.point(K, N, models, snr_db=snr)
        raw.append(r)
        rows.append([snr, *(fmt(r[m]) for m in models), fmt(r["rzf"]), fmt(r["zf"]), fmt(r["wmmse"])])
        rows[-1] += [r[f"{m}_pct"] for m in models]
    header = ["SNR [dB]", *models, "LMMSE", "ZF", "WMMSE", *(f"{m} % of WMMSE" for m in models)]

    def plot(path):
        x = [r["snr_db"] for r in raw]
        series = {m: [r[m] for r in raw] for m in models}
        series.update({"LMMSE": [r["rzf"] for r in raw], "WMMSE": [r["wmmse"] for r in raw]})
        plot_lines(path, x, series, "SNR [dB]", f"Fig. 5 (002): window length, ({K}, {N})")

    notes = f"Mean sum rate [bit/s/Hz] at (K, N) = ({K}, {N}) on the same held-out channels per SNR."
    return Report("Paper 002 Fig. 5: sliding-window length W", header, rows, raw, notes, plot)


def main(argv=None):
    return run_sao_experiment("sao_fig5_window", __doc__, body, argv)


if __name__ == "__main__":
    main()
