"""Paper 002's MT-SAO(-lift): masks and padding, feasibility, the untrained model, gradients, curriculum, resume."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam.configs import get_sao_preset
from jaxbeam.data.streams import stream
from jaxbeam.jobs.sao import train_sao
from jaxbeam.models.sao import SAO
from jaxbeam.train.losses import make_trajectory_loss
from jaxbeam.train.sources import CurriculumSource, masked_channels

S2 = 0.01
KM, NM = 6, 5


def small(**kw):
    base = dict(num_layers=2, steps=2, step_size=None, sigma2=S2, features=16, num_heads=2, mlp_features=16)
    return SAO(KM, NM, **{**base, **kw})


@pytest.fixture(scope="module")
def setup():
    model = small()
    H = jb.rayleigh(jax.random.key(0), (3,), 4, 3)
    return model, _perturbed(model.init(jax.random.key(1), H, 1.0)["params"]), H


def _perturbed(params, key=2):
    """A trained-looking model: every parameter moved, so no layer is the identity."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(key), len(leaves))
    return jax.tree.unflatten(
        tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    )


@pytest.fixture(scope="module")
def gradient_setup():
    model = small(gradient_input=True)
    H = jb.rayleigh(jax.random.key(0), (3,), 4, 3)
    return model, _perturbed(model.init(jax.random.key(1), H, 1.0)["params"]), H


@pytest.fixture(scope="module")
def learned_setup():
    model = small(step_size=0.05, normalize_step=True, learned_step=True, monotone=True)
    H = jb.rayleigh(jax.random.key(0), (3,), 4, 3)
    return model, _perturbed(model.init(jax.random.key(1), H, 1.0)["params"]), H


@pytest.mark.parametrize("which", ["setup", "gradient_setup", "learned_setup"])
def test_padded_batch_equals_the_unpadded_run(which, request):
    model, params, H = request.getfixturevalue(which)
    W = model.apply({"params": params}, H, 1.0)
    chex.assert_shape(W, (3, 4, 3))
    # the same channels padded to (K_m, N_m) with the padding masked, and garbage in the padded entries
    Hp = jnp.pad(H, ((0, 0), (0, KM - 4), (0, NM - 3)))
    noise = jb.rayleigh(jax.random.key(5), (3,), KM, NM)
    um = jnp.broadcast_to(jnp.arange(KM) < 4, (3, KM))
    am = jnp.broadcast_to(jnp.arange(NM) < 3, (3, NM))
    Hp = jnp.where(um[:, :, None] & am[:, None, :], Hp, noise)
    Wp = model.apply({"params": params}, Hp, 1.0, mask=um, antenna_mask=am)
    np.testing.assert_allclose(Wp[:, :4, :3], W, atol=2e-5)
    assert float(jnp.max(jnp.abs(Wp[:, 4:]))) == 0.0 and float(jnp.max(jnp.abs(Wp[:, :, 3:]))) == 0.0


def test_gradient_input_is_the_normalised_ascent_direction(x64):
    """``gradient_input``'s G against central finite differences of the sum rate (numpy, float64)."""
    model = small(gradient_input=True)
    H = np.asarray(jb.rayleigh(jax.random.key(4), (2,), 3, 2), np.complex128)
    W = np.asarray(jb.rzf(H, 1.0, S2), np.complex128)
    um, entry = jnp.ones((2, 3), bool), jnp.ones((2, 3, 2))
    g = model.apply({}, jnp.asarray(H), jnp.asarray(W), um, entry, method=SAO._ascent)
    G = np.asarray(SAO._gradient(g, entry))
    sr = lambda W: np.asarray(jb.sum_rate(jnp.asarray(H), jnp.asarray(W), S2))  # noqa: E731
    fd, h = np.zeros_like(W), 1e-6
    for k, n, d in np.ndindex(3, 2, 2):
        E = np.zeros_like(W)
        E[:, k, n] = h * (1j if d else 1.0)
        fd[:, k, n] += (1j if d else 1.0) * (sr(W + E) - sr(W - E)) / (2 * h)
    rms = np.sqrt(np.mean(np.abs(fd) ** 2, axis=(-2, -1), keepdims=True))
    np.testing.assert_allclose(G, fd / rms, atol=1e-6)


def test_step_features_against_finite_differences(x64):
    """``learned_step``'s features: ``log(||g|| sqrt(P))`` and the tangential share of the sum-rate gradient,
    with g from central finite differences and the tangent part by a numpy projection."""
    model = small(step_size=0.05, normalize_step=True, learned_step=True)
    H = np.asarray(jb.rayleigh(jax.random.key(4), (2,), 3, 2), np.complex128)
    W = np.asarray(jb.rzf(H, 2.0, S2), np.complex128) * np.array([1.0, 0.7])[:, None, None]  # off the sphere
    um, am = jnp.array([[True] * 3, [True, True, False]]), jnp.ones((2, 2), bool)
    entry = (um[:, :, None] & am[:, None, :]).astype(jnp.complex128)
    W = W * np.asarray(entry)
    g = model.apply({}, jnp.asarray(H) * entry, jnp.asarray(W), um, entry, method=SAO._ascent)
    stats = np.asarray(SAO._step_stats(g, jnp.asarray(W), jnp.array([2.0, 2.0]), um, am))
    sr = lambda W: np.asarray(jb.sum_rate(jnp.asarray(H) * entry, jnp.asarray(W), S2, mask=um))  # noqa: E731
    g, h = np.zeros_like(W), 1e-6
    for k, n, d in np.ndindex(3, 2, 2):
        E = np.zeros_like(W)
        E[:, k, n] = h * (1j if d else 1.0)
        g[:, k, n] += (1j if d else 1.0) * (sr(W + E) - sr(W - E)) / (2 * h)
    g = g * np.asarray(entry)
    gn = np.linalg.norm(g.reshape(2, -1), axis=1)
    w = W.reshape(2, -1)
    radial = np.real(np.sum(np.conj(w) * g.reshape(2, -1), 1)) / np.sum(np.abs(w) ** 2, 1)
    tn = np.linalg.norm(g.reshape(2, -1) - radial[:, None] * w, axis=1)
    np.testing.assert_allclose(stats[:, 0], np.log(gn * np.sqrt(2.0)), atol=1e-5)
    np.testing.assert_allclose(stats[:, 1], np.log(tn / gn), atol=1e-5)
    np.testing.assert_allclose(stats[:, 2:], [[1.0, 1.0], [2 / 3, 1.0]], rtol=1e-6)  # of the masks' widths


def test_learned_step_starts_at_the_fixed_step_and_scales_it():
    """Untrained, ``learned_step`` takes the fixed normalised step; a step head that outputs log(1/2) everywhere
    takes half of it (the same as :func:`jaxbeam.refine` with ``step_size / 2`` after each layer)."""
    fixed = small(step_size=0.05, normalize_step=True)
    model = fixed.clone(learned_step=True)
    H = jb.rayleigh(jax.random.key(3), (4,), 5, 4)
    params = model.init(jax.random.key(1), H, 1.0)["params"]
    run = jax.jit(lambda m, p: m.apply({"params": p}, H, 1.0), static_argnums=0)
    np.testing.assert_allclose(run(model, params), run(fixed, params), atol=2e-6)
    half = np.float32(4.0 * np.arctanh(np.log(0.5) / 4.0))  # a = 4 tanh(raw / 4) = log(1/2)
    halved = jax.tree.map(lambda x: x, params)
    for t in range(2):
        halved[f"layer_{t}"]["step_out"]["bias"] = jnp.full((1,), half)
    ref = jb.rzf(H, 1.0, S2)
    for _ in range(2):
        ref = jb.refine(H, ref, 1.0, S2, "sr", 2, 0.025, project="sphere", normalize=True)
    np.testing.assert_allclose(run(model, halved), ref, atol=2e-5)
    with pytest.raises(ValueError, match="learned_step=True needs normalize_step"):
        small(learned_step=True).apply({"params": params}, H, 1.0)
    with pytest.raises(ValueError, match="learned_step=True needs normalize_step"):
        get_sao_preset("smoke", learned_step=True)


def test_monotone_layers_never_fall_below_the_lmmse_start():
    """A random (badly trained) model falls below LMMSE on some channels; the monotone one on none, and it
    keeps the random model's beams wherever those are better."""
    model = small(num_layers=1, steps=0, lift=False)
    H = jb.rayleigh(jax.random.key(7), (64,), 4, 3)
    params = _perturbed(model.init(jax.random.key(1), H, 1.0)["params"], key=5)
    params = jax.tree.map(lambda x: 0.1 * x, params)  # small random updates: better on some channels
    sr = lambda W: jb.sum_rate(H, W, S2)  # noqa: E731
    base = sr(jb.rzf(H, 1.0, S2))
    plain = sr(model.apply({"params": params}, H, 1.0))
    kept = sr(model.clone(monotone=True).apply({"params": params}, H, 1.0))
    assert bool(jnp.any(plain < base - 1e-3)) and bool(jnp.any(plain > base + 1e-3))
    np.testing.assert_allclose(kept, jnp.maximum(plain, base), rtol=1e-5)


def test_late_sao_fields_at_their_defaults_keep_the_run_identity():
    cfg = get_sao_preset("smoke")
    assert "learned_step" not in cfg.to_dict() and "monotone" not in cfg.to_dict()
    on = get_sao_preset("cpu").to_dict()  # the cpu preset uses both
    assert on["learned_step"] is True and on["monotone"] is True and on["normalize_step"] is True


def test_every_layer_is_feasible_at_full_power(setup):
    model, params, H = setup
    P = jnp.array([0.5, 1.0, 2.0])
    traj = model.clone(trajectory=True).apply({"params": params}, H, P)
    chex.assert_shape(traj, (3, 2, 4, 3))
    power = jnp.sum(jnp.abs(traj) ** 2, axis=(-2, -1))
    np.testing.assert_allclose(power, jnp.broadcast_to(P[:, None], power.shape), rtol=1e-5)


@pytest.mark.parametrize(
    "lift, gradient_input, normalized",
    [  # CI: SAO-lift and SAO with backtracking, the gradient input with the normalised step
        (True, False, False),
        (False, False, False),
        pytest.param(True, True, False, marks=pytest.mark.slow),
        (True, True, True),
    ],
)
def test_untrained_model_is_lmmse_followed_by_the_gradient_steps(lift, gradient_input, normalized):
    step = {"step_size": 0.05, "normalize_step": True} if normalized else {}  # else backtracking
    model = small(lift=lift, gradient_input=gradient_input, **step)
    H = jb.rayleigh(jax.random.key(3), (4,), 5, 4)
    params = model.init(jax.random.key(1), H, 1.0)["params"]
    assert ("h_out" in params["layer_0"]) == lift  # SAO (eq. 11) has no channel update
    W = jax.jit(lambda p: model.apply({"params": p}, H, 1.0))(params)  # (op by op: many small compiles)
    ref = jb.rzf(H, 1.0, S2)  # eq. 5
    for _ in range(2):  # T = 2 layers, Q = 2 steps each
        ref = jb.refine(H, ref, 1.0, S2, "sr", 2, 0.05 if normalized else None, project="sphere", normalize=normalized)
    np.testing.assert_allclose(W, ref, atol=2e-5)
    assert float(jnp.mean(jb.sum_rate(H, W, S2))) > float(jnp.mean(jb.sum_rate(H, jb.rzf(H, 1.0, S2), S2)))


def test_gradients_flow_through_the_steps_into_the_window_only(setup):
    model, params, H = setup
    window = model.clone(first_trained=1, active_layers=2, trajectory=True)
    loss = make_trajectory_loss(S2)
    grads = jax.jit(jax.grad(lambda p: jnp.mean(loss(window.apply({"params": p}, H, 1.0), {"H": H})[0])))(params)
    g0 = jax.tree.leaves(grads["layer_0"])
    g1 = jax.tree.leaves(grads["layer_1"])
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in g0)  # frozen layer: stop_gradient
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in g1)
    assert float(jnp.max(jnp.abs(grads["layer_1"]["w_out"]["kernel"]))) > 0
    # the gradient through Q fixed-size steps (smooth: no line search) matches a central difference
    fixed = window.clone(step_size=1e-4)
    d = jax.tree.map(lambda x: jax.random.normal(jax.random.key(9), x.shape), params["layer_1"])
    norm = jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree.leaves(d)))
    d = jax.tree.map(lambda v: v / norm, d)  # a unit direction: the difference stays in the linear range

    @jax.jit
    def f(eps):
        p = dict(params, layer_1=jax.tree.map(lambda x, v: x + eps * v, params["layer_1"], d))
        return jnp.mean(loss(fixed.apply({"params": p}, H, 1.0), {"H": H})[0])

    g = jax.jit(jax.grad(f))(0.0)
    eps = 3e-2
    np.testing.assert_allclose(g, (f(eps) - f(-eps)) / (2 * eps), rtol=2e-2)


def test_bad_inputs_name_the_argument(setup):
    model, params, _ = setup
    with pytest.raises(ValueError, match="max_users"):
        model.apply({"params": params}, jb.rayleigh(jax.random.key(0), (2,), KM + 1, 3), 1.0)
    with pytest.raises(ValueError, match="max_antennas"):
        model.apply({"params": params}, jb.rayleigh(jax.random.key(0), (2,), 3, NM + 1), 1.0)
    H = jb.rayleigh(jax.random.key(0), (2,), 3, 3)
    with pytest.raises(ValueError, match="steps"):
        model.clone(steps=-1).apply({"params": params}, H, 1.0)
    with pytest.raises(TypeError, match="H must be a complex"):
        model.apply({"params": params}, jnp.ones((2, 3, 3)), 1.0)
    with pytest.raises(ValueError, match="first_trained"):
        model.clone(first_trained=2, active_layers=2).apply({"params": params}, H, 1.0)
    with pytest.raises(ValueError, match="P must be finite > 0"):
        model.apply({"params": params}, H, -1.0)
    with pytest.raises(ValueError, match="head_features"):
        get_sao_preset("smoke", features=9, num_heads=2)
    with pytest.raises(ValueError, match="unknown SAO config field"):
        get_sao_preset("smoke", nope=1)


def test_curriculum_follows_algorithm_1_with_replay():
    src = CurriculumSource(6, 5, (2, 4), (3, 5), stage_epochs=2, batch_size=10, steps_per_epoch=2, replay=3, seed=4)
    assert src.stages == [(2, 3), (2, 5), (4, 3), (4, 5)] and src.epochs == 8  # users outer, antennas inner
    assert [src.stage(e) for e in range(9)] == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    b0 = next(src.epoch(0))
    np.testing.assert_array_equal(b0["mask"].sum(1), 2)  # stage 0: no replay
    np.testing.assert_array_equal(b0["antenna_mask"].sum(1), 3)
    b = next(src.epoch(6))  # stage 3: 7 current samples, 3 replayed from stages 0..2
    counts = [(int(k), int(n)) for k, n in zip(b["mask"].sum(1), b["antenna_mask"].sum(1), strict=True)]
    assert counts[:7] == [(4, 5)] * 7 and all(c in src.stages[:3] for c in counts[7:])
    live = b["mask"][:, :, None] & b["antenna_mask"][:, None, :]
    assert np.all(b["H"][~live] == 0) and np.all(b["H"][live] != 0)
    again = next(src.epoch(6))
    np.testing.assert_array_equal(again["H"], b["H"])  # (seed, epoch, batch) determine a batch
    v = masked_channels(6, 5, [(2, 3), (4, 5)], 3)
    assert v["H"].shape == (6, 6, 5) and list(v["mask"].sum(1)) == [2] * 3 + [4] * 3


def test_curriculum_draws_other_channel_sources_before_masking():
    """``channel="pathloss"``: batch i of epoch e is ``jb.pathloss`` from the key its generator draws first,
    masked as Rayleigh batches are; users tens of dB apart; unknown or per-step-too-slow sources refused."""
    src = CurriculumSource(6, 5, (2, 4), (3, 5), stage_epochs=1, batch_size=16, steps_per_epoch=2, seed=4,
                           channel="pathloss")  # fmt: skip
    b = list(src.epoch(3))[1]
    key = jax.random.key(int(stream("batch", 4, 3, 1).integers(0, 2**31 - 1)))
    live = b["mask"][:, :, None] & b["antenna_mask"][:, None, :]
    np.testing.assert_allclose(b["H"][live], np.asarray(jb.pathloss(key, (16,), 6, 5))[live], rtol=1e-6)
    assert np.all(b["H"][~live] == 0) and list(b["mask"].sum(1)) == [4] * 16
    power = np.sum(np.abs(b["H"]) ** 2, -1)  # per user; masked users 0
    spread = [p[m].max() / p[m].min() for p, m in zip(power, b["mask"], strict=True)]
    assert np.median(spread) > 10  # > 10 dB between the strongest and weakest of 4 users, typically
    v = masked_channels(6, 5, [(2, 3)], 4, channel="pathloss")
    assert v["H"].shape == (4, 6, 5) and not np.allclose(v["H"], masked_channels(6, 5, [(2, 3)], 4)["H"])
    with pytest.raises(ValueError, match="channel must be one of"):
        CurriculumSource(6, 5, (2,), (3,), stage_epochs=1, batch_size=4, steps_per_epoch=1, channel="sionna-uma")
    with pytest.raises(ValueError, match="Sionna's sources are too slow"):
        get_sao_preset("smoke", channel="sionna-uma")
    assert "channel" not in get_sao_preset("smoke").to_dict()  # Rayleigh runs keep their folders and cache keys
    assert get_sao_preset("smoke", channel="pathloss").to_dict()["channel"] == "pathloss"


def test_sliding_window_training_resumes_to_the_same_parameters(tmp_path):
    cfg = get_sao_preset("smoke")
    full = train_sao(cfg, tmp_path / "full", progress=False)
    assert [r["window"] for r in full.history] == [0] * cfg.epochs_per_window + [1] * cfg.epochs_per_window
    interrupted = train_sao(cfg, tmp_path / "cut", progress=False, max_steps=cfg.epochs_per_window * 2 + 3)
    assert interrupted.history[-1]["window"] == 1  # stopped inside the second window
    resumed = train_sao(cfg, tmp_path / "cut", progress=False)
    chex.assert_trees_all_close(resumed.params, full.params, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="sao_config.window"):
        train_sao(get_sao_preset("smoke", window=2), tmp_path / "full", progress=False)


def test_sao_cost_benchmark_times_an_untrained_preset_and_scores_its_beams(tmp_path):
    """``benchmarks.sao_cost --untrained``: the initial model is LMMSE + T x Q_i steps, recomputed here."""
    from benchmarks import sao_cost

    out = tmp_path / "cost.json"
    sao_cost.main(["--untrained", "smoke", "--configs", "4,3", "--batches", "8", "--repeats", "1", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert payload["meta"]["untrained"] == "smoke" and len(payload["results"]) == 1
    (rec,) = payload["results"]
    assert all(rec[f"{k}_s"] > 0 for k in ("sao", "wmmse", "rzf", "ga"))
    cfg = get_sao_preset("smoke")
    H = jb.rayleigh(jax.random.key(7), (8,), 4, 3)
    W = jb.rzf(H, cfg.P, cfg.sigma2)
    for _ in range(cfg.num_layers):
        W = jb.refine(H, W, cfg.P, cfg.sigma2, "sr", cfg.infer_steps, project="sphere")
    np.testing.assert_allclose(rec["sao"], float(np.mean(jb.sum_rate(H, W, cfg.sigma2))), rtol=1e-4)
    with pytest.raises(SystemExit):
        sao_cost.main(["--configs", "4,3"])  # neither a run nor --untrained
