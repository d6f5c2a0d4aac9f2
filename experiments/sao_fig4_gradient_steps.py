"""Paper 002 Fig. 4: MT-SAO-lift trained with Q_t gradient steps per layer, evaluated with Q_i steps.

    python -m experiments.sao_fig4_gradient_steps --preset cpu

002 trains Q_t in {0, 5, 10} and evaluates at (40, 28), 20 dB, over Q_i; its text (no numbers are given)
says Q_t = 5 beats Q_t = 0 and 10, and Q_i > Q_t helps. Here Q_t in {0, 3, 6} on ``cpu`` (whose default is 3)
at (16, 12), with LMMSE + the same T x Q_i gradient steps without any network ("steps only", the untrained
model) beside them: a trained model that does not beat its own steps has learned nothing.
"""

from __future__ import annotations

from experiments.report import Report
from experiments.sao_common import fmt, plot_lines, run_sao_experiment

TRAIN_STEPS = {"paper": (0, 5, 10), "cpu": (0, 3, 6), "smoke": (0, 1)}
INFER_STEPS = {"paper": (0, 5, 10, 15, 20), "cpu": (0, 3, 5, 10, 20), "smoke": (0, 2)}


def body(ctx) -> Report:
    K, N = ctx.systems.overloaded
    models = {f"Q_t={q}": ctx.model(f"qt{q}", train_steps=q) for q in TRAIN_STEPS[ctx.preset]}
    cfg0, _ = next(iter(models.values()))
    untrained = cfg0, ctx.untrained_params(cfg0)
    rows, raw = [], []
    for qi in INFER_STEPS[ctx.preset]:
        r = ctx.point(K, N, {**models, "steps only": untrained}, steps=qi)
        raw.append({"Q_i": qi, **r})
        rows.append([qi, *(r[f"{m}_pct"] for m in models), r["steps only_pct"], r["rzf_pct"], fmt(r["wmmse"])])
    header = ["Q_i", *(f"{m} % of WMMSE" for m in models), "steps only %", "LMMSE %", "WMMSE SR"]

    def plot(path):
        x = [r["Q_i"] for r in raw]
        series = {m: [r[m] for r in raw] for m in (*models, "steps only")}
        series.update({"LMMSE": [r["rzf"] for r in raw], "WMMSE": [r["wmmse"] for r in raw]})
        plot_lines(path, x, series, "inference steps per layer Q_i", f"Fig. 4 (002): ({K}, {N}), 20 dB")

    notes = (
        f"MT-SAO-lift at (K, N) = ({K}, {N}), mean sum rate as % of WMMSE (tol 1e-5) on the same held-out "
        "channels. 'steps only' = LMMSE followed by the same T x Q_i gradient steps without the network."
    )
    return Report("Paper 002 Fig. 4: training (Q_t) and inference (Q_i) gradient steps", header, rows, raw, notes, plot)


def main(argv=None):
    return run_sao_experiment("sao_fig4_gradient_steps", __doc__, body, argv)


if __name__ == "__main__":
    main()
