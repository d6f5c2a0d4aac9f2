"""jaxbeam against a PyTorch eager BERT: ``python -m benchmarks.torch_reference [--rounds 5]``
(needs the ``bench`` extra: ``pip install -e '.[bench]'``, which brings PyTorch).

A PyTorch user would write BERT4beam's model, loss and optimiser step as below: the same architecture as
``jaxbeam.models.BERT`` (eq. 4 tokens, eq. 7 embedding, post-LN blocks of eqs. 8-13 with ``4F`` GELU-tanh
FFN, eq. 14 head, eq. 15 GPA), the supervised loss of eq. 17 (matrix cosine, sum rate) and Adam, in eager
mode, with complex numbers as real and imaginary parts. The parameter counts are checked equal.

Measured on the same inputs in one process, in ``--rounds`` interleaved rounds (median), on all the host's
cores for both frameworks:

* training: steps/s of the ``cpu`` preset's BERT (F = 128, 3 blocks, 4 heads), batch 64 at (6, 12),
  jaxbeam's jitted step (:class:`jaxbeam.train.Engine`, batches already on the device, one step per call and
  ``--chunk`` steps per call) against ``loss.backward(); adam.step()``;
* inference: samples/s of the forward pass at F = 128, 4 blocks, batch 32, (8, 16), and at the ``paper``
  size (F = 1024, 12 blocks, 16 heads), jitted against ``torch.inference_mode()``.

Prints each rate and the ratio jaxbeam / PyTorch; writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import numpy as np


def torch_bert(N: int, F: int, L: int, C: int):
    """BERT4beam's BERT in PyTorch (see the module docstring); ``model(Hr, Hi, P) -> (Wr, Wi)``."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(F, C, batch_first=True)
            self.ln_attn = nn.LayerNorm(F, eps=1e-6)  # Flax's default epsilon
            self.ffn = nn.Sequential(nn.Linear(F, 4 * F), nn.GELU(approximate="tanh"), nn.Linear(4 * F, F))
            self.ln_ffn = nn.LayerNorm(F, eps=1e-6)

        def forward(self, x):
            x = self.ln_attn(x + self.mha(x, x, x, need_weights=False)[0])  # eq. 10
            return self.ln_ffn(x + self.ffn(x))  # eq. 13

    class BERT(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.ln = nn.Linear(2 * N, F), nn.LayerNorm(F, eps=1e-6)
            self.blocks = nn.ModuleList([Block() for _ in range(L)])
            self.head = nn.Linear(F, 2 * N)

        def forward(self, Hr, Hi, P):
            x = torch.nn.functional.elu(self.ln(self.fc(torch.cat([Hr, Hi], -1))))  # eqs. 4, 7
            for block in self.blocks:
                x = block(x)
            out = self.head(x)  # eq. 14
            Wr, Wi = out[..., :N], out[..., N:]
            norm2 = (Wr**2 + Wi**2).sum(dim=(-2, -1))
            scale = (torch.sqrt(P) / torch.sqrt(torch.clamp(norm2, min=1.0)))[:, None, None]  # eq. 15
            return Wr * scale, Wi * scale

    return BERT()


def load_flax_params(model, params) -> None:
    """Copy a ``jaxbeam.models.BERT``'s parameters into :func:`torch_bert`'s model (to check they compute the same)."""
    import torch

    def t(x):
        return torch.from_numpy(np.array(x, np.float32))

    def dense(lin, p):
        lin.weight.data, lin.bias.data = t(np.asarray(p["kernel"]).T), t(p["bias"])

    def norm(ln, p):
        ln.weight.data, ln.bias.data = t(p["scale"]), t(p["bias"])

    dense(model.fc, params["embed"]["fc"])
    norm(model.ln, params["embed"]["ln"])
    for i, block in enumerate(model.blocks):
        p = params["encoder"][f"block_{i}"]
        F = block.ln_attn.weight.shape[0]
        qkv = [p["mha"][n] for n in ("query", "key", "value")]
        block.mha.in_proj_weight.data = t(np.concatenate([np.asarray(x["kernel"]).reshape(F, F).T for x in qkv]))
        block.mha.in_proj_bias.data = t(np.concatenate([np.asarray(x["bias"]).reshape(F) for x in qkv]))
        block.mha.out_proj.weight.data = t(np.asarray(p["mha"]["out"]["kernel"]).reshape(F, F).T)
        block.mha.out_proj.bias.data = t(p["mha"]["out"]["bias"])
        norm(block.ln_attn, p["ln_attn"])
        dense(block.ffn[0], p["ffn_in"])
        dense(block.ffn[2], p["ffn_out"])
        norm(block.ln_ffn, p["ln_ffn"])
    dense(model.head, params["head"])


def torch_loss(Hr, Hi, Wr, Wi, Lr, Li, sigma2: float, lambda1: float, lambda2: float):
    """Eq. 17 with the matrix cosine and the sum rate, mean over the batch."""
    import torch

    # G[k, i] = h_k^H w_i
    Gr = Hr @ Wr.transpose(-1, -2) + Hi @ Wi.transpose(-1, -2)
    Gi = Hr @ Wi.transpose(-1, -2) - Hi @ Wr.transpose(-1, -2)
    g2 = Gr**2 + Gi**2
    signal = torch.diagonal(g2, dim1=-2, dim2=-1)
    sr = torch.log2(1 + signal / (g2.sum(-1) - signal + sigma2)).sum(-1)
    inner_r = (Lr * Wr + Li * Wi).sum(dim=(-2, -1))  # <vec W_label, vec W>
    inner_i = (Lr * Wi - Li * Wr).sum(dim=(-2, -1))
    norms = (Lr**2 + Li**2).sum(dim=(-2, -1)) * (Wr**2 + Wi**2).sum(dim=(-2, -1))
    c = (inner_r**2 + inner_i**2) / torch.clamp(norms, min=1e-30)
    return (lambda1 * (1 - c) - lambda2 * sr).mean()


def _median_rate(fn, units: float, seconds: float) -> float:
    """``units`` per second of ``fn`` (one call), timed over at least ``seconds``."""
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n * units / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per set-up and round")
    ap.add_argument("--chunk", type=int, default=8, help="jaxbeam steps per call in the second training row")
    ap.add_argument("--no-paper", action="store_true", help="skip the paper-size inference row")
    ap.add_argument("--torch-threads", type=int, help="PyTorch intra-op threads (default: PyTorch's, one per core)")
    ap.add_argument("--out", default="torch_reference.json")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("PyTorch is not installed: pip install -e '.[bench]'") from None
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    import jax
    import jax.numpy as jnp

    import jaxbeam as jb
    from jaxbeam import configs, train
    from jaxbeam.jobs.builders import bert_model, loss_for

    cfg = configs.get_preset("cpu", utility="sr", K=6, N=12)
    K, N, B = 6, 12, cfg.train.batch_size
    m, tc = cfg.model, cfg.train
    key = jax.random.key(0)
    H = jb.rayleigh(key, (B,), K, N)
    P = jnp.ones((B,), jnp.float32)
    labels = jb.rzf(H, P, cfg.system.sigma2)
    batch = {"H": np.asarray(H), "P": np.asarray(P), "W_label": np.asarray(labels)}

    # jaxbeam: the engine's jitted step, one per call and a scan of --chunk
    engine = train.Engine(bert_model(cfg), loss_for(cfg), train.make_optimizer(tc.learning_rate, 10**6))
    state = {"s": engine.init_state(jax.random.PRNGKey(0), batch)}
    placed, chunk = engine.put_batch(batch), engine.put_chunk([batch] * args.chunk)
    n_jax = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state["s"]["params"]))

    def jax_step():
        state["s"], metrics = engine.train_step(state["s"], placed)
        jax.block_until_ready(metrics)

    def jax_chunk():
        state["s"], metrics = engine.train_chunk(state["s"], chunk)
        jax.block_until_ready(metrics)

    # PyTorch eager
    torch.manual_seed(0)
    model = torch_bert(N, m.features, m.num_layers, m.num_heads)
    n_torch = sum(p.numel() for p in model.parameters())
    if n_torch != n_jax:
        raise SystemExit(f"the two models differ: {n_torch:,} PyTorch parameters against {n_jax:,} in jaxbeam")
    # the same function: jaxbeam's initial parameters in the PyTorch model give the same beams and loss
    load_flax_params(model, jax.device_get(state["s"]["params"]))
    with torch.no_grad():
        h = batch["H"]
        Wr, Wi = model(torch.from_numpy(h.real.copy()), torch.from_numpy(h.imag.copy()), torch.from_numpy(batch["P"]))
        W_jax = np.asarray(engine.model.apply({"params": state["s"]["params"]}, batch["H"], batch["P"]))
        err = np.max(np.abs(Wr.numpy() + 1j * Wi.numpy() - W_jax)) / np.max(np.abs(W_jax))
        lab = batch["W_label"]
        args_t = [torch.from_numpy(x.copy()) for x in (h.real, h.imag)] + [Wr, Wi]
        args_t += [torch.from_numpy(x.copy()) for x in (lab.real, lab.imag)]
        loss_t = float(torch_loss(*args_t, cfg.system.sigma2, tc.lambda1, tc.lambda2))
    loss_j = float(np.mean(loss_for(cfg)(jnp.asarray(W_jax), batch)[0]))
    print(f"same model: max |W_torch - W_jax| / max |W_jax| = {err:.1e}; loss {loss_t:.6f} against {loss_j:.6f}")
    if err > 1e-4 or abs(loss_t - loss_j) > 1e-4 * max(1.0, abs(loss_j)):
        raise SystemExit("the PyTorch model does not compute jaxbeam's BERT and loss")
    opt = torch.optim.Adam(model.parameters(), lr=tc.learning_rate)
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in (("Hr", batch["H"].real), ("Hi", batch["H"].imag))}
    t.update(Lr=torch.from_numpy(batch["W_label"].real.copy()), Li=torch.from_numpy(batch["W_label"].imag.copy()))
    tP = torch.from_numpy(batch["P"])

    def torch_step():
        opt.zero_grad(set_to_none=True)
        Wr, Wi = model(t["Hr"], t["Hi"], tP)
        loss = torch_loss(t["Hr"], t["Hi"], Wr, Wi, t["Lr"], t["Li"], cfg.system.sigma2, tc.lambda1, tc.lambda2)
        loss.backward()
        opt.step()

    # inference set-ups: (name, F, L, C, K, N, batch)
    sizes = [("small", 128, 4, 4, 8, 16, 32)] + ([] if args.no_paper else [("paper", 1024, 12, 16, 8, 16, 32)])
    infer = {}
    for name, F, L, C, Ki, Ni, Bi in sizes:
        bert = jb.models.BERT(num_antennas=Ni, features=F, num_layers=L, num_heads=C)
        Hi_ = jb.rayleigh(jax.random.key(1), (Bi,), Ki, Ni)
        Pi = jnp.ones((Bi,), jnp.float32)
        params = jax.jit(bert.init)(key, Hi_[:1], Pi[:1])
        fwd = jax.jit(bert.apply)
        tm = torch_bert(Ni, F, L, C).eval()
        h = np.asarray(Hi_)
        thr, thi, tpi = (
            torch.from_numpy(h.real.copy()),
            torch.from_numpy(h.imag.copy()),
            torch.from_numpy(np.asarray(Pi)),
        )

        def jf(fwd=fwd, params=params, H=Hi_, P=Pi):
            jax.block_until_ready(fwd(params, H, P))

        def tf(tm=tm, a=thr, b=thi, c=tpi):
            with torch.inference_mode():
                tm(a, b, c)

        infer[name] = (jf, tf, Bi, f"F = {F}, {L} blocks, batch {Bi}, ({Ki}, {Ni})")

    setups = {
        "train jaxbeam, 1 step/call": (jax_step, 1),
        f"train jaxbeam, {args.chunk} steps/call": (jax_chunk, args.chunk),
        "train PyTorch eager": (torch_step, 1),
    }
    for name, (jf, tf, Bi, _) in infer.items():
        setups[f"infer {name} jaxbeam"] = (jf, Bi)
        setups[f"infer {name} PyTorch"] = (tf, Bi)
    for fn, _ in setups.values():  # compile / warm up
        fn()
        fn()
    rates = {k: [] for k in setups}
    for r in range(args.rounds):
        for k, (fn, units) in setups.items():
            rates[k].append(_median_rate(fn, units, args.seconds))
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    med = {k: float(np.median(v)) for k, v in rates.items()}
    torch_train = med["train PyTorch eager"]
    rows = [
        (
            "training steps/s",
            "cpu BERT, batch 64, (6, 12)",
            "1 step/call",
            med["train jaxbeam, 1 step/call"],
            torch_train,
        ),
        (
            "training steps/s",
            "cpu BERT, batch 64, (6, 12)",
            f"{args.chunk} steps/call",
            med[f"train jaxbeam, {args.chunk} steps/call"],
            torch_train,
        ),
    ]
    for name, (*_, what) in infer.items():
        rows.append(("inference samples/s", what, name, med[f"infer {name} jaxbeam"], med[f"infer {name} PyTorch"]))
    print(
        f"\njaxbeam (jax {jax.__version__}) against PyTorch {torch.__version__} eager on "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} PyTorch threads, "
        f"median of {args.rounds} interleaved rounds; {n_jax:,} parameters in both training models:"
    )
    from jaxbeam.jobs.report import markdown_table

    body = [[a, b, c, f"{j:,.1f}", f"{p:,.1f}", f"{j / p:.2f}"] for a, b, c, j, p in rows]
    print(markdown_table(["what", "model", "set-up", "jaxbeam", "PyTorch", "ratio"], body))
    with open(args.out, "w") as f:
        json.dump(
            {
                "jax": jax.__version__,
                "torch": torch.__version__,
                "rows": [dict(zip(("what", "model", "setup", "jaxbeam", "torch"), r, strict=True)) for r in rows],
                "rounds": rates,
            },
            f,
            indent=1,
        )
    if any(not math.isfinite(r[3]) or not math.isfinite(r[4]) for r in rows):
        raise SystemExit("a rate is not finite")


if __name__ == "__main__":
    main()
