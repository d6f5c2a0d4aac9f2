"""Deep-unfolded WMMSE (#39): the iteration against a numpy loop, WMMSE itself at zero parameters, feasibility,
masks, gradients, label-free training (it must beat WMMSE-T at equal T), resume, the loader and the command."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbeam as jb
from jaxbeam.cli import main
from jaxbeam.configs import get_unfolded_preset
from jaxbeam.jobs.load import load_beamformer
from jaxbeam.jobs.unfolded import evaluate_systems, load_unfolded, train_unfolded
from jaxbeam.models import UnfoldedWMMSE
from jaxbeam.solvers.unfolded import identity_params, unfolded_wmmse
from jaxbeam.train.losses import make_relative_rate_loss
from jaxbeam.train.sources import SystemsSource

pytestmark = pytest.mark.xdist_group("unfolded")

PARAMS = {"log_mu": [0.8, -0.4, 0.2], "log_beta": [0.5, -0.2, 0.1], "gamma": [0.3, 1.2, -0.1]}


def _numpy_unfolded(H, P, sigma2, params, W0):
    """The module docstring's iteration on the N-dimensional beams, one sample at a time, in float64."""
    H, W0 = np.asarray(H, np.complex128), np.asarray(W0, np.complex128)
    out = np.empty_like(W0)
    for b in range(H.shape[0]):
        h, W = H[b], W0[b].copy()
        K, N = h.shape
        for lm, lb, g in zip(*(params[k] for k in ("log_mu", "log_beta", "gamma")), strict=True):
            A = h.conj() @ W.T  # A[k, i] = h_k^H w_i
            total = np.sum(np.abs(A) ** 2, axis=1) + sigma2
            u = np.diag(A) / total
            v = (total / (total - np.abs(np.diag(A)) ** 2)) ** np.exp(lb)
            c = v * np.abs(u) ** 2
            R = sum(c[i] * np.outer(h[i], h[i].conj()) for i in range(K))
            mu = np.exp(lm) * sigma2 * c.sum() / P
            Wh = np.stack([np.linalg.solve(R + mu * np.eye(N), u[k] * v[k] * h[k]) for k in range(K)])
            Wh *= np.sqrt(P / np.sum(np.abs(Wh) ** 2))
            Wt = Wh + g * (Wh - W)
            W = Wt * np.sqrt(P / np.sum(np.abs(Wt) ** 2))
        out[b] = W
    return out


def test_the_iteration_is_the_documented_update_computed_by_a_numpy_loop():
    H = jb.rayleigh(jax.random.key(0), (4,), 3, 4)
    P, s2 = 2.0, 0.05
    W = unfolded_wmmse(H, P, s2, {k: jnp.asarray(v) for k, v in PARAMS.items()})
    chex.assert_shape(W, (4, 3, 4))
    chex.assert_type(W, jnp.complex64)
    ref = _numpy_unfolded(H, P, s2, PARAMS, jb.rzf(H, P, s2))
    # a beam's phase is free (the rates do not see it): compare the gains |h_k^H w_i|
    gains = lambda W: np.abs(np.einsum("bkn,bin->bki", np.asarray(H).conj(), W))  # noqa: E731
    np.testing.assert_allclose(gains(np.asarray(W)), gains(ref), rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(np.sum(np.abs(np.asarray(W)) ** 2, (-2, -1)), P, rtol=1e-5)


@pytest.mark.parametrize("T", [1, 4])
def test_zero_parameters_are_wmmse_itself(T):
    H = jb.rayleigh(jax.random.key(1), (32,), 6, 6)
    a = jb.sum_rate(H, unfolded_wmmse(H, 1.0, 0.01, identity_params(T)), 0.01)
    b = jb.sum_rate(H, jb.wmmse_fixed(H, 1.0, 0.01, T), 0.01)
    np.testing.assert_allclose(a, b, rtol=1e-4)


def test_masks_are_the_smaller_system_and_gradients_are_finite():
    p = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    H = jb.rayleigh(jax.random.key(2), (8,), 4, 5)
    user = jnp.array([True, False, True, True])
    antenna = jnp.array([True, True, False, True, True])
    model = UnfoldedWMMSE(iterations=3, sigma2=0.1)
    W = model.apply({"params": p}, H, 1.0, jnp.broadcast_to(user, (8, 4)), jnp.broadcast_to(antenna, (8, 5)))
    assert np.all(np.asarray(W)[:, 1] == 0) and np.all(np.asarray(W)[:, :, 2] == 0)
    small = unfolded_wmmse(H[:, user][:, :, antenna], 1.0, 0.1, p)
    np.testing.assert_allclose(np.asarray(W)[:, user][:, :, antenna], small, atol=2e-5)

    def loss(p):
        W = unfolded_wmmse(H, 1.0, 0.1, p, mask=jnp.broadcast_to(user, (8, 4)))
        return -jnp.mean(jb.sum_rate(H, W, 0.1, mask=jnp.broadcast_to(user, (8, 4))))

    g = jax.grad(loss)(p)
    assert all(np.all(np.isfinite(v)) and np.any(v != 0) for v in g.values())
    # the gradient is the derivative: a central difference along it
    d = {k: v / jnp.sqrt(sum(jnp.sum(x**2) for x in g.values())) for k, v in g.items()}
    eps = 1e-2
    shifted = lambda s: loss({k: p[k] + s * d[k] for k in p})  # noqa: E731
    fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
    np.testing.assert_allclose(fd, sum(jnp.sum(g[k] * d[k]) for k in p), rtol=0.05)


def test_bad_parameters_are_refused():
    H = jb.rayleigh(jax.random.key(0), (2,), 2, 2)
    with pytest.raises(ValueError, match="params must be a dict with keys"):
        unfolded_wmmse(H, 1.0, 0.1, {"gamma": jnp.zeros(2)})
    with pytest.raises(ValueError, match="same T >= 1"):
        unfolded_wmmse(H, 1.0, 0.1, {"log_mu": jnp.zeros(2), "log_beta": jnp.zeros(3), "gamma": jnp.zeros(2)})
    with pytest.raises(ValueError, match="iterations must be an int >= 1"):
        identity_params(0)


def test_a_few_label_free_steps_beat_wmmse_at_the_same_iterations():
    """The learned knobs must earn their keep: on fresh channels after training, above WMMSE-T at equal T."""
    K, N, T, s2 = 6, 6, 2, 0.01
    p = identity_params(T)
    tx = optax.adam(5e-2)
    st = tx.init(p)

    @jax.jit
    def step(p, st, key):
        H = jb.rayleigh(key, (64,), K, N)
        g = jax.grad(lambda p: -jnp.mean(jb.sum_rate(H, unfolded_wmmse(H, 1.0, s2, p), s2)))(p)
        u, st = tx.update(g, st)
        return optax.apply_updates(p, u), st

    for i in range(40):
        p, st = step(p, st, jax.random.key(100 + i))
    H = jb.rayleigh(jax.random.key(7), (256,), K, N)
    learned = float(jnp.mean(jb.sum_rate(H, unfolded_wmmse(H, 1.0, s2, p), s2)))
    plain = float(jnp.mean(jb.sum_rate(H, jb.wmmse_fixed(H, 1.0, s2, T), s2)))
    assert learned > 1.01 * plain


def test_systems_source_masks_each_sample_to_one_of_its_systems_and_resumes_exactly():
    src = SystemsSource([(2, 3), (4, 1)], batch_size=16, steps_per_epoch=3, P=2.0, seed=5)
    batches = list(src.epoch(1))
    for b in batches:
        chex.assert_shape(b["H"], (16, 4, 3))
        pairs = set(zip(b["mask"].sum(1).tolist(), b["antenna_mask"].sum(1).tolist(), strict=True))
        assert pairs <= {(2, 3), (4, 1)}
        assert np.all(b["H"][~b["mask"]] == 0) and np.all(b["P"] == 2.0)
    np.testing.assert_array_equal(next(src.epoch(1, start=2))["H"], batches[2]["H"])
    with pytest.raises(ValueError, match="systems must be"):
        SystemsSource([(0, 3)], batch_size=2, steps_per_epoch=1)


def test_relative_rate_loss_is_minus_the_ratio_to_rzf():
    H = jb.rayleigh(jax.random.key(3), (4,), 3, 3)
    P = jnp.full(4, 1.5)
    W = jb.mrt(H, 1.5)
    loss, metrics = make_relative_rate_loss(0.1)(W, {"H": H, "P": P})
    ratio = np.asarray(jb.sum_rate(H, W, 0.1)) / np.asarray(jb.sum_rate(H, jb.rzf(H, 1.5, 0.1), 0.1))
    np.testing.assert_allclose(-loss, ratio, rtol=1e-5)
    np.testing.assert_allclose(metrics["utility"], jb.sum_rate(H, W, 0.1), rtol=1e-5)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke preset trained through the command (``WORKDIR/model`` is the run)."""
    work = tmp_path_factory.mktemp("unfolded")
    assert main(["pretrain", "--model", "unfolded", "--preset", "smoke", "--workdir", str(work)]) == 0
    return work / "model"


def test_training_resumes_to_the_parameters_of_an_uninterrupted_run(smoke_run, tmp_path):
    cfg = get_unfolded_preset("smoke")
    train_unfolded(cfg, tmp_path / "r", progress=False, max_steps=2)  # stopped like a kill, mid-epoch
    train_unfolded(cfg, tmp_path / "r", progress=False)
    _, resumed = load_unfolded(tmp_path / "r")
    _, whole = load_unfolded(smoke_run)
    jax.tree.map(np.testing.assert_array_equal, resumed, whole)
    assert any(np.any(v != 0) for v in jax.tree.leaves(whole))  # it trained
    with pytest.raises(ValueError, match="iterations"):  # another config on the same folder is refused
        train_unfolded(get_unfolded_preset("smoke", iterations=3), tmp_path / "r", progress=False)


def test_loader_and_evaluate_command(smoke_run, tmp_path, capsys, monkeypatch):
    # two WMMSE-k rungs beside T (each rung is one more program compiled per system; the code is the same for any)
    monkeypatch.setattr("jaxbeam.jobs.sao.LADDER", (1, 50))
    cfg, params = load_unfolded(smoke_run)
    bf = load_beamformer(smoke_run)
    assert (bf.kind, bf.utility, bf.N, bf.K) == ("unfolded", "sr", None, None)
    H = jb.rayleigh(jax.random.key(4), (5,), 3, 3)
    np.testing.assert_allclose(bf(H, 1.0), unfolded_wmmse(H, 1.0, cfg.sigma2, params), atol=1e-6)
    np.testing.assert_allclose(bf(H, 1.0, 0.5), unfolded_wmmse(H, 1.0, 0.5, params), atol=1e-6)  # any sigma2
    with pytest.raises(ValueError, match="sum rate only"):
        load_beamformer(smoke_run, task="mr")
    out = tmp_path / "rows.json"
    assert main(["evaluate", str(smoke_run), "--samples", "8", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["K"], r["N"]) for r in rows] == [tuple(s) for s in cfg.systems]
    assert "unfolded-2 %" in capsys.readouterr().out
    again = evaluate_systems(cfg, params, samples=8, seed=12345)  # the command's default seed
    for r, a in zip(rows, again, strict=True):
        assert r["unfolded_pct"] == pytest.approx(a["unfolded_pct"]) and r["wmmse_2_pct"] == pytest.approx(
            a["wmmse_2_pct"]
        )
        assert 0 < r["rzf_pct"] <= 100.5 and r["wmmse_50_pct"] >= r["wmmse_1_pct"] - 1e-6
    assert main(["evaluate", str(smoke_run), "--labels", "x"]) == 2
    assert "drop --labels" in capsys.readouterr().err
    assert main(["pretrain", "--model", "unfolded", "--preset", "smoke", "--workdir", str(tmp_path / "b"),
                 "--set", "systems=3y3"]) == 2  # fmt: skip
    assert "KxN pairs" in capsys.readouterr().err
    assert main(["pretrain", "--model", "unfolded", "--workdir", str(tmp_path / "c"), "--K", "4"]) == 2
    assert "does not apply to --model unfolded" in capsys.readouterr().err
