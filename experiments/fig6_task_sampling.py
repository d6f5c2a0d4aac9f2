"""Fig. 6: multi-task training with uniform task sampling (Algorithm 1: every batch holds B/3 samples of each
task) against random sampling (each sample's task drawn at random), UBERT at (6, 12).

    python -m experiments.fig6_task_sampling --preset cpu

The curve is the validation criterion per epoch (mean over tasks of eq. 31 / 100, from each run's
``metrics.jsonl``); the table is the final test performance per task. The paper (figure only): uniform
sampling converges faster and smoother and ends higher.
"""

from __future__ import annotations

import json

from experiments.common import REF_HEADER, REFS, Context, Report, pool, run_experiment

K, N = 6, 12
UTILITIES = ("sr", "mr", "ee")


def body(ctx: Context) -> Report:
    curves, rows, raw = {}, [], []
    tests = {u: ctx.labels(u, K, N).split("test") for u in UTILITIES}
    refs = {u: pool(ctx.evaluate(u, tests[u], references=REFS)) for u in UTILITIES}
    for sampling in ("uniform", "random"):
        ubert = ctx.pretrained_ubert(K, N, sampling=sampling)
        log = ctx.ubert_dir(K, N, sampling=sampling) / "metrics.jsonl"
        records = [json.loads(x) for x in log.read_text().splitlines()] if log.is_file() else []
        curves[sampling] = [(r["epoch"], 100 * r["val_utility"]) for r in records if "val_utility" in r]
        for u in UTILITIES:
            r = {**pool(ctx.evaluate(u, tests[u], *ubert, ubert=True, name="ubert", references=())), **refs[u]}
            rows.append([sampling, u.upper(), r["ubert"]] + [r[k] for k in REFS])
            raw.append({"sampling": sampling, "utility": u, **r})

    def plot(path):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.8))
        for sampling, pts in curves.items():
            ax.plot([e for e, _ in pts], [v for _, v in pts], "o-" if sampling == "uniform" else "s--", label=sampling)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation: mean over tasks of eq. 31 [%]")
        ax.set_title("Fig. 6: uniform vs random task sampling (UBERT, (6, 12))")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    header = ["sampling", "utility", "UBERT %", *REF_HEADER]
    return Report(
        "Fig. 6: task sampling in multi-task pre-training (eq. 31)",
        header,
        rows,
        {"table": raw, "curves": curves},
        plot=plot,
    )


def main(argv=None):
    return run_experiment("fig6_task_sampling", __doc__, body, argv)


if __name__ == "__main__":
    main()
