"""Training and evaluation of paper 002's MT-SAO(-lift) (Algorithm 1) on the shared engine.

Training is one :func:`jaxbeam.train.fit` per position of the sliding window (Sec. III-C1): position ``w``
trains layers ``[w, w + W)`` (the ones before it frozen and run under ``stop_gradient``, the ones after it
not applied) on one pass over the curriculum of masking stages with sample replay
(:class:`jaxbeam.train.sources.CurriculumSource`), starting from the parameters position ``w - 1`` ended
with. Each position has its own run directory (``window_<w>``), so a killed run resumes inside the position
it was killed in, and finished positions are not trained again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path

import jax
import numpy as np

import jaxbeam as jb
from jaxbeam import train
from jaxbeam.configs import SAOConfig
from jaxbeam.jobs.runs import check_run
from jaxbeam.models.sao import SAO
from jaxbeam.train.finetune import trainable_labels
from jaxbeam.train.losses import make_trajectory_loss
from jaxbeam.train.sources import CurriculumSource, masked_channels


def sao_model(cfg: SAOConfig, *, steps: int | None = None, **overrides) -> SAO:
    """The :class:`jaxbeam.models.SAO` of a config; ``steps`` defaults to the inference steps Q_i."""
    kw = dict(
        max_users=cfg.max_users,
        max_antennas=cfg.max_antennas,
        num_layers=cfg.num_layers,
        steps=cfg.infer_steps if steps is None else steps,
        step_size=cfg.step_size if cfg.step_size > 0 else None,
        normalize_step=cfg.normalize_step,
        sigma2=cfg.sigma2,
        features=cfg.features,
        num_heads=cfg.num_heads,
        head_features=cfg.head_features,
        mlp_features=cfg.mlp_features,
        lift=cfg.lift,
        gradient_input=cfg.gradient_input,
        learned_step=cfg.learned_step,
        monotone=cfg.monotone,
    )
    kw.update(overrides)
    return SAO(**kw)


def validation_set(cfg: SAOConfig) -> dict[str, np.ndarray]:
    """``val_per_config`` masked channels of every curriculum stage (the same for every window position)."""
    return masked_channels(
        cfg.max_users, cfg.max_antennas, cfg.stages, cfg.val_per_config, P=cfg.P, seed=cfg.seed + 1, channel=cfg.channel
    )


@dataclasses.dataclass
class SAORun:
    """What :func:`train_sao` returns: final parameters, per-window fit histories and training seconds."""

    params: dict
    history: list[dict]
    train_seconds: float
    config: SAOConfig


def train_sao(cfg: SAOConfig, workdir: str | Path, *, progress: bool = True, max_steps: int | None = None) -> SAORun:
    """Algorithm 1 (training phase): ``cfg.window_positions`` fits of ``cfg.epochs_per_window`` epochs each.

    Args:
      cfg: the SAO config (:func:`jaxbeam.configs.get_sao_preset`).
      workdir: run directory; ``config.json`` there records the config, and a directory of another config
        is refused with the differing field named.
      progress: progress bars and one line per window position.
      max_steps: stop once this many steps were trained in all (like a kill; for tests of resume).
    """
    workdir = Path(workdir)
    identity = {"sao_config": json.loads(json.dumps(cfg.to_dict(), default=str))}
    check_run(workdir, identity)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps({"identity": identity}, indent=1, sort_keys=True))
    loss_fn = make_trajectory_loss(cfg.sigma2)
    val = validation_set(cfg)
    params, history, seconds, done = None, [], 0.0, 0
    per_window = cfg.epochs_per_window * cfg.steps_per_epoch
    for w in range(cfg.window_positions):
        t_s, t_e = w, w + cfg.window
        model = sao_model(cfg, steps=cfg.train_steps, first_trained=t_s, active_layers=t_e, trajectory=True)
        source = CurriculumSource(
            cfg.max_users,
            cfg.max_antennas,
            cfg.K_schedule,
            cfg.N_schedule,
            stage_epochs=cfg.stage_epochs,
            batch_size=cfg.batch_size,
            steps_per_epoch=cfg.steps_per_epoch,
            replay=cfg.replay,
            P=cfg.P,
            seed=cfg.seed * 1000 + w,
            channel=cfg.channel,
        )
        if params is None:
            params = model.init(jax.random.PRNGKey(cfg.seed), *_example(source))["params"]
        left = None if max_steps is None else max_steps - done
        if left is not None and left <= 0:
            break
        labels = trainable_labels(params, trainable=[f"layer_{t}" for t in range(t_s, t_e)])
        if progress:
            print(f"window {w + 1}/{cfg.window_positions}: training layers {t_s + 1}..{t_e} of {cfg.num_layers}")
        res = train.fit(
            model,
            loss_fn,
            source,
            epochs=cfg.epochs_per_window,
            learning_rate=cfg.learning_rate,
            final_learning_rate=cfg.final_learning_rate,
            val=val,
            workdir=workdir / f"window_{w}",
            config={"window": w, "sao_config": identity["sao_config"]},
            seed=cfg.seed,
            init_params=params,
            trainable_labels=labels,
            eval_batch_size=cfg.eval_batch_size,
            checkpoint_every=cfg.checkpoint_every,
            log_every=cfg.log_every,
            steps_per_call=cfg.steps_per_call,
            max_steps=left if left is not None and left < per_window else None,
            progress=progress,
        )
        step = int(jax.device_get(res.state["step"]))
        done += step
        params = jax.device_get(res.state["params"])  # the next window starts where this one ended
        history.extend({"window": w, **r} for r in res.history)
        seconds += res.history[-1]["train_seconds"] if res.history else 0.0  # (cumulative per window)
        if step < per_window:  # stopped early (max_steps): the later windows must not start
            break
    return SAORun(params=params, history=history, train_seconds=seconds, config=cfg)


def _example(source: CurriculumSource):
    b = next(source.epoch(0))
    return b["H"], b["P"], b["mask"], b["antenna_mask"]


@functools.lru_cache(maxsize=64)
def _jitted_apply(cfg: SAOConfig, steps: int | None, sigma2: float):
    """One jitted ``(params, H) -> W`` per (config, Q_i, sigma2): models of one config share its compilations."""
    model = sao_model(cfg, steps=steps, sigma2=sigma2)
    return jax.jit(lambda p, H: model.apply({"params": p}, H, cfg.P))


def model_sum_rates(
    cfg: SAOConfig,
    params: dict,
    H,
    *,
    steps: int | None = None,
    sigma2: float | None = None,
    batch_size: int = 256,
) -> tuple[np.ndarray, float]:
    """Per-sample sum rates [bit/s/Hz] of the model on ``H`` ``(B, K, N)`` (unmasked) and the seconds it took
    (compile excluded: timed on a second call).

    ``steps`` (Q_i) defaults to ``cfg.infer_steps``; ``sigma2`` (the noise power of the LMMSE start, the
    gradient steps and the rates) to ``cfg.sigma2`` (another value evaluates a model trained at one SNR at
    another).
    """
    s2 = cfg.sigma2 if sigma2 is None else float(sigma2)
    apply = _jitted_apply(cfg, steps, s2)

    def run():
        chunks = [apply(params, H[i : i + batch_size]) for i in range(0, H.shape[0], batch_size)]
        return np.concatenate([np.asarray(c) for c in chunks])

    run()  # compile
    t0 = time.perf_counter()
    W = run()
    seconds = time.perf_counter() - t0
    return np.asarray(jb.sum_rate(H, W, s2)), seconds


LADDER = (1, 2, 3, 5, 10, 20, 50)
"""WMMSE budgets (iterations from RZF, :func:`jaxbeam.wmmse_fixed`) beside every model row: the cheapest that
reaches the model's quality is its fair speed baseline."""


def _timed(fn, H):
    """``(fn(H), seconds of a second call)`` (compile excluded)."""
    jax.block_until_ready(fn(H))
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(H))
    return out, time.perf_counter() - t0


def reference_sum_rates(H, P: float, sigma2: float, *, wmmse_tol: float = 1e-5) -> tuple[dict, dict]:
    """Per-sample sum rates on ``H`` of RZF (LMMSE, eq. 5), ZF (None where K > N), converged WMMSE
    (``wmmse_tol``) and WMMSE-k for k in :data:`LADDER` (``"wmmse_k"``: ``{k: rates}``), and the seconds of
    converged WMMSE (``"wmmse"``) and of each WMMSE-k (``{k: s}``), compile excluded (timed on a second call)."""
    K, N = H.shape[-2:]
    sr = lambda W: np.asarray(jb.sum_rate(H, W, sigma2))
    W, t_conv = _timed(jax.jit(lambda H: jb.wmmse(H, P, sigma2, tol=wmmse_tol)), H)
    rates = {"rzf": sr(jb.rzf(H, P, sigma2)), "zf": sr(jb.zf(H, P)) if K <= N else None, "wmmse": sr(W)}
    rates["wmmse_k"], seconds = {}, {"wmmse": t_conv}
    for k in LADDER:
        Wk, seconds[k] = _timed(jax.jit(lambda H, k=k: jb.wmmse_fixed(H, P, sigma2, k)), H)
        rates["wmmse_k"][k] = sr(Wk)
    return rates, seconds


def evaluate_grid(
    cfg: SAOConfig,
    params: dict,
    configs: list[tuple[int, int]],
    *,
    samples: int = 256,
    wmmse_tol: float = 1e-5,
    seed: int = 0,
    batch_size: int = 256,
    steps: int | None = None,
    channel: str | None = None,
    channel_args: dict | None = None,
) -> list[dict]:
    """Sum rate of the model (Q_i steps per layer: ``steps``, default ``cfg.infer_steps``), RZF (LMMSE, eq. 5),
    ZF (K <= N) and WMMSE on the same channels at every ``(K, N)`` of ``configs`` (unmasked
    ``(samples, K, N)`` inputs), with timings. ``channel`` / ``channel_args``: the source
    (:func:`jaxbeam.data.generate.draw_source`; default: ``cfg.channel``, the one the model trained on).

    Returns one record per configuration: mean sum rates [bit/s/Hz], % of WMMSE, and seconds (model and
    WMMSE, compile excluded: each is timed on a second call).
    """
    from jaxbeam.data.generate import draw_source, source_params

    channel = cfg.channel if channel is None else channel
    params_of_source = source_params(channel, channel_args)
    rows = []
    for K, N in configs:
        H = draw_source(channel, jax.random.key(seed), samples, K, N, np.complex64, params_of_source)
        sao, t_model = model_sum_rates(cfg, params, H, steps=steps, batch_size=batch_size)
        refs, secs = reference_sum_rates(H, cfg.P, cfg.sigma2, wmmse_tol=wmmse_tol)
        ladder = refs.pop("wmmse_k")
        rec = {"K": K, "N": N, "samples": samples, "sao": float(np.mean(sao))}
        rec.update({k: None if v is None else float(np.mean(v)) for k, v in refs.items()})
        rec.update({"sao_seconds": t_model, "wmmse_seconds": secs["wmmse"]})
        for k in ("sao", "rzf", "zf"):
            rec[f"{k}_pct"] = None if rec[k] is None else 100.0 * rec[k] / rec["wmmse"]
        rec["ladder_pct"] = {k: 100.0 * float(np.mean(v)) / rec["wmmse"] for k, v in ladder.items()}
        rec["ladder_seconds"] = {k: secs[k] for k in ladder}
        reach = [k for k in LADDER if rec["ladder_pct"][k] >= rec["sao_pct"]]
        rec["matched_k"] = reach[0] if reach else None  # the cheapest WMMSE-k at >= the model's quality
        rec["matched_seconds"] = secs[reach[0]] if reach else None
        rows.append(rec)
    return rows


def initial_params(cfg: SAOConfig) -> dict:
    """Initial parameters of ``cfg``'s model (seed ``cfg.seed``): zero output layers, so the model is LMMSE
    (eq. 5) followed by its T x Q_i gradient steps (eq. 8)."""
    H = jb.rayleigh(jax.random.key(0), (2,), cfg.max_users, cfg.max_antennas)  # shapes only
    return sao_model(cfg).init(jax.random.PRNGKey(cfg.seed), H, cfg.P)["params"]


def load_sao(workdir: str | Path) -> tuple[SAOConfig, dict]:
    """The config and parameters of a finished :func:`train_sao` run: the best-on-validation parameters of
    its last window position (which hold every layer). Raises ``ValueError`` if ``workdir`` holds no SAO
    run or the run has not finished its last window."""
    workdir = Path(workdir)
    f = workdir / "config.json"
    if not f.is_file():
        raise ValueError(f"{workdir} is not an SAO run directory (no config.json)")
    ident = json.loads(f.read_text()).get("identity", {})
    if "sao_config" not in ident:
        raise ValueError(f"{workdir} holds no SAO run (its config.json has no sao_config)")
    cfg = SAOConfig(**ident["sao_config"])
    last = workdir / f"window_{cfg.window_positions - 1}"
    if not (last / "config.json").is_file():
        raise ValueError(f"{workdir}: training has not reached its last window ({last.name}); run it again to resume")
    return cfg, train.load_params(last, which="best")


def grid_table(rows: list[dict]) -> str:
    """Markdown table of :func:`evaluate_grid` rows."""
    from jaxbeam.jobs.report import markdown_table

    def pct(v):
        return "-" if v is None else f"{v:.1f}"

    body = [
        [
            f"({r['K']}, {r['N']})",
            f"{r['wmmse']:.2f}",
            pct(r["sao_pct"]),
            pct(r["rzf_pct"]),
            pct(r["zf_pct"]),
            f"{r['samples'] / r['sao_seconds']:,.0f}",
            "none <= 50"
            if r.get("matched_k") is None
            else f"WMMSE-{r['matched_k']} ({pct(r['ladder_pct'][r['matched_k']])})",
            "-" if r.get("matched_k") is None else f"{r['samples'] / r['matched_seconds']:,.0f}",
            f"{r['samples'] / r['wmmse_seconds']:,.0f}",
        ]
        for r in rows
    ]
    header = ["(K, N)", "WMMSE SR", "SAO %", "RZF %", "ZF %", "SAO [samples/s]", "cheapest WMMSE-k >= SAO (%)",
              "its samples/s", "converged WMMSE [samples/s]"]  # fmt: skip
    return markdown_table(header, body)


def plot_grid(rows: list[dict], path: Path, title: str) -> None:
    """Heat map of the model's sum rate as % of WMMSE over (K, N), and its margin over RZF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ks = sorted({r["K"] for r in rows})
    Ns = sorted({r["N"] for r in rows})
    grids = {key: np.full((len(Ks), len(Ns)), np.nan) for key in ("sao_pct", "gain")}
    for r in rows:
        i, j = Ks.index(r["K"]), Ns.index(r["N"])
        grids["sao_pct"][i, j] = r["sao_pct"]
        grids["gain"][i, j] = r["sao_pct"] - r["rzf_pct"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = [("sao_pct", "SAO sum rate, % of WMMSE"), ("gain", "SAO - RZF [points]")]
    for ax, (key, label) in zip(axes, panels, strict=True):
        im = ax.imshow(grids[key], origin="lower", cmap="viridis")
        for (i, j), v in np.ndenumerate(grids[key]):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=8)
        ax.set_xticks(range(len(Ns)), Ns)
        ax.set_yticks(range(len(Ks)), Ks)
        ax.set_xlabel("N (antennas)")
        ax.set_ylabel("K (users)")
        ax.set_title(label)
        fig.colorbar(im, ax=ax)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def quickstart_sao(
    preset: str = "cpu",
    workdir: str | Path = "runs/quickstart_sao",
    *,
    lift: bool = True,
    samples: int = 256,
    seed: int = 0,
    progress: bool = True,
    **overrides,
) -> dict:
    """Train (or resume) the preset's MT-SAO(-lift) and evaluate it on ``samples`` held-out Rayleigh channels
    at every ``(K, N)`` of its schedule grid against RZF, ZF and WMMSE (tol 1e-5); writes
    ``sao_grid.md``, ``.json`` and ``.png`` into ``workdir``. Returns ``{"rows", "train_seconds", ...}``."""
    from jaxbeam.configs import get_sao_preset

    cfg = get_sao_preset(preset, lift=lift, seed=seed, **overrides)
    workdir = Path(workdir)
    t0 = time.perf_counter()
    if progress:
        print(
            f"MT-SAO{'-lift' if lift else ''} ({preset}): K_m = {cfg.max_users}, N_m = {cfg.max_antennas}, "
            f"T = {cfg.num_layers}, W = {cfg.window}, Q_t = {cfg.train_steps}, Q_i = {cfg.infer_steps}, "
            f"{cfg.total_steps:,} training steps of batch {cfg.batch_size}, {cfg.snr_db:g} dB"
        )
    run = train_sao(cfg, workdir / "model", progress=progress)
    _, params = load_sao(workdir / "model")
    rows = evaluate_grid(cfg, params, cfg.stages, samples=samples, seed=seed + 12345)
    result = {
        "preset": preset,
        "lift": lift,
        "config": cfg.to_dict(),
        "rows": rows,
        "train_seconds": run.train_seconds,
        "seconds": time.perf_counter() - t0,
        "device": str(jax.devices()[0].device_kind),
    }
    name = f"MT-SAO{'-lift' if lift else ''} ({preset} preset, {cfg.snr_db:g} dB, {samples} channels per (K, N))"
    (workdir / "sao_grid.md").write_text(f"{name}\n\n{grid_table(rows)}\n")
    (workdir / "sao_grid.json").write_text(json.dumps(result, indent=1, default=str))
    plot_grid(rows, workdir / "sao_grid.png", name)
    return result
