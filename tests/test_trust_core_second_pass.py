"""Issue "Trust, second pass": the angle domain of non-prefix antenna masks (item 2), ``jb.feasible`` with an
antenna mask (item 6) and control characters in source files (item 10)."""

from __future__ import annotations

import ast
import pathlib
import re
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb

ROOT = pathlib.Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------- item 2: angle domain
MASKS = np.array(
    [
        [True, False, True, True],  # the case: a hole
        [False, True, False, True],  # leading padding
        [True, True, True, False],  # a prefix
        [True, True, True, True],  # none absent
        [False, False, True, False],  # one antenna
        [False, False, False, False],  # none present
    ]
)


def _np_angle(H, mask):
    """The orthonormal DFT over the present antennas only, written back at their positions, 0 elsewhere."""
    out = np.zeros_like(H, np.complex128)
    for b in range(H.shape[0]):
        m = mask[b]
        if m.any():
            out[b][:, m] = np.fft.fft(H[b][:, m].astype(np.complex128), axis=-1, norm="ortho")
    return out


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_angle_domain_of_any_antenna_mask_is_the_dft_over_the_present_antennas(jit):
    """Non-prefix masks: ``H_a`` is numpy's orthonormal DFT of the present entries (ranked in array order),
    the round trip gives ``H`` back at the present antennas, and the map is unitary there; also under jit,
    where the mask is traced."""
    rng = np.random.default_rng(2)
    H = (rng.standard_normal((len(MASKS), 3, 4)) + 1j * rng.standard_normal((len(MASKS), 3, 4))).astype(np.complex64)
    W = (rng.standard_normal(H.shape) + 1j * rng.standard_normal(H.shape)).astype(np.complex64)
    fwd, inv = (jax.jit(jb.angle_domain), jax.jit(jb.spatial_domain)) if jit else (jb.angle_domain, jb.spatial_domain)
    Ha = np.asarray(fwd(H, MASKS))
    np.testing.assert_allclose(Ha, _np_angle(H, MASKS), atol=2e-6)
    back = np.asarray(inv(Ha, MASKS))
    np.testing.assert_allclose(back, np.where(MASKS[:, None, :], H, 0), atol=2e-6)  # was off by 1.58 at [1,0,1,1]
    Hm, Wm = np.where(MASKS[:, None, :], H, 0), np.where(MASKS[:, None, :], W, 0)
    Wa = np.asarray(fwd(W, MASKS))
    np.testing.assert_allclose(np.linalg.norm(Ha, axis=(-2, -1)), np.linalg.norm(Hm, axis=(-2, -1)), rtol=1e-5)
    np.testing.assert_allclose(  # every gain kept: conj(H_a) W_a^T = conj(H) W^T
        np.einsum("bkn,bin->bki", Ha.conj(), Wa), np.einsum("bkn,bin->bki", Hm.conj(), Wm), atol=1e-5
    )
    # a prefix mask is each sample's own N-point DFT, as before
    np.testing.assert_allclose(Ha[2][:, :3], np.fft.fft(H[2][:, :3], norm="ortho"), atol=2e-6)


def test_ubert_angle_domain_with_a_hole_in_the_antenna_mask_sees_the_dft_of_the_present_antennas():
    """``UBERT(domain="angle")``'s tokens for a non-prefix mask are those of the DFT over the present antennas."""
    from jaxbeam.core.tokenize import dft_matrix

    m = np.array([True, False, True, True])
    F = np.asarray(dft_matrix(4, jnp.asarray(m)))
    want = np.zeros((4, 4), complex)
    want[np.ix_(m, m)] = np.fft.fft(np.eye(3), norm="ortho")
    np.testing.assert_allclose(F, want, atol=1e-6)
    np.testing.assert_allclose(F.conj().T @ F, np.diag(m.astype(float)), atol=1e-6)  # unitary on the present ones


# --------------------------------------------------------------------------- item 6: feasible with a mask
def test_feasible_antenna_budget_counts_only_the_present_antennas():
    """UBERT budgets ``P / N_present`` per antenna; ``jb.feasible(..., antenna_mask=...)`` checks the same."""
    mask = np.array([[True, True, True, False], [True, False, True, True]])
    P = np.array([1.0, 2.0], np.float32)
    n = mask.sum(-1)
    col = np.where(mask, (P / n)[:, None], 0.0)  # every present antenna exactly at its budget
    W = np.broadcast_to(np.sqrt(col / 2)[:, None, :], (2, 2, 4)).astype(np.complex64)  # K = 2 users share it
    ok = np.asarray(jb.feasible(W, P, power="antenna", antenna_mask=mask))
    np.testing.assert_array_equal(ok, [True, True])
    assert not np.asarray(jb.feasible(W, P, power="antenna")).any()  # P / 4 per antenna: over budget
    over = W * np.float32(np.sqrt(1.01))
    assert not np.asarray(jb.feasible(over, P, power="antenna", antenna_mask=mask)).any()
    # absent antennas' entries do not count (as absent users' beams do not), for either constraint
    junk = np.where(mask[:, None, :], W, np.complex64(10.0))
    np.testing.assert_array_equal(np.asarray(jb.feasible(junk, P, power="antenna", antenna_mask=mask)), [True, True])
    np.testing.assert_array_equal(np.asarray(jb.feasible(junk, P, antenna_mask=mask)), [True, True])
    assert not np.asarray(jb.feasible(junk, P)).any()
    # under jit (a traced mask) the same
    f = jax.jit(lambda W, P, m: jb.feasible(W, P, power="antenna", antenna_mask=m))
    np.testing.assert_array_equal(np.asarray(f(W, P, mask)), [True, True])
    with pytest.raises(ValueError, match="antenna_mask"):
        jb.feasible(W, P, antenna_mask=np.ones((2, 3), bool))
    with pytest.raises(TypeError, match="antenna_mask"):
        jb.feasible(W, P, antenna_mask=mask.astype(int))


def test_feasible_accepts_padded_ubert_beams_under_the_per_antenna_constraint():
    """UBERT's padded per-antenna beams (mixed antenna counts) are feasible under ``P / N_present``."""
    from jaxbeam.models import UBERT

    model = UBERT(features=8, num_layers=1, num_heads=2, head="element", power="antenna")
    H = jb.rayleigh(jax.random.key(0), (2,), 2, 4)
    mask = np.array([[True, True, True, False], [True, True, True, True]])
    v = model.init(jax.random.key(1), H, 1.0, 0, antenna_mask=mask)
    v = jax.tree.map(lambda x: x * 1e3 if x.ndim == 2 else x, v)  # raw beams well outside the ball: GPA saturates
    W = model.apply(v, H, 1.0, 0, antenna_mask=mask)
    assert np.asarray(jb.feasible(W, 1.0, power="antenna", antenna_mask=mask, rtol=1e-4)).all()


# --------------------------------------------------------------------------------- item 10: control chars
SOURCE_SUFFIXES = (".py", ".md", ".toml")
SOURCE_ROOTS = ("jaxbeam", "tests", "experiments", "benchmarks", "docs")


def _source_files() -> list[pathlib.Path]:
    """Tracked and untracked (not ignored) .py/.md/.toml files of the repository; a walk of the package, test,
    experiment, benchmark and docs folders and the top-level files where git is not available."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = [p.name for p in ROOT.iterdir() if p.is_file()]
        for top in SOURCE_ROOTS:
            names += [
                str(p.relative_to(ROOT))
                for p in (ROOT / top).rglob("*")
                if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in p.parts)
            ]
    files = [ROOT / n for n in names if n.endswith(SOURCE_SUFFIXES)]
    files = [f for f in files if f.is_file()]  # a tracked file deleted in the working tree
    assert any(f.name == "power.py" for f in files), "the scan found no source files"
    return files


# Every byte below 0x20 but the newline, and DEL. A tab is rejected too: the sources are indented with spaces
# (ruff format), and a tab inside a string is what an interpreted "\t" of "\theta" or "\tau" leaves behind; a
# tab that belongs in a string is written "\t". A carriage return (a CRLF line end or an interpreted "\r" of
# "\rho") is rejected as well, which is why the files are read as bytes (text mode would turn it into "\n").
CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]")


def test_no_source_file_holds_a_control_character():
    bad = []
    for path in _source_files():
        for i, line in enumerate(path.read_bytes().split(b"\n"), 1):
            for m in CONTROL.finditer(line):
                bad.append(f"{path.relative_to(ROOT)}:{i}:{m.start() + 1}: {m.group()!r} in {line[:80]!r}")
    assert not bad, "control characters (an escape interpreted when the file was written?):\n" + "\n".join(bad)


# A LaTeX command that Python reads as an escape in a non-raw string: \alpha \beta \frac \nabla \nu \rho
# \theta \tau \varepsilon -> BEL, BS, FF, LF, CR, TAB, VT.
_LATEX_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\[abfnrtv][A-Za-z]")


def test_no_docstring_turns_latex_into_control_characters():
    """Docstrings with a backslash escape followed by letters (``\\theta``) must be raw strings."""
    bad = []
    for path in _source_files():
        if path.suffix != ".py":
            continue
        tree = ast.parse(path.read_bytes(), str(path))
        lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines(): it also splits at \f, \x1c...
        for node in ast.walk(tree):
            if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not node.body or not isinstance(node.body[0], ast.Expr):
                continue
            doc = node.body[0].value
            if not (isinstance(doc, ast.Constant) and isinstance(doc.value, str)):
                continue
            src = "\n".join(lines[doc.lineno - 1 : doc.end_lineno])[doc.col_offset :]
            prefix = re.match(r"[A-Za-z]*", src).group().lower()
            if "r" not in prefix and _LATEX_ESCAPE.search(src):
                bad.append(f"{path.relative_to(ROOT)}:{doc.lineno}: {_LATEX_ESCAPE.search(src).group()!r}")
    assert not bad, "docstrings that need an r prefix:\n" + "\n".join(bad)


def test_correlated_and_gpa_antenna_docstrings_read_as_written():
    """The formulas that had lost characters: ``\\rho``, ``\\theta``, ``\\beta``, ``\\frac``."""
    doc = jb.correlated.__doc__
    assert r"R_0[m, n] = \rho^{|m - n|}" in doc and r"\sin\theta_k" in doc
    assert r"h_k = \sqrt{\beta_k}" in jb.pathloss.__doc__
    assert r"\frac{\sqrt{P_n}}" in jb.gpa_antenna.__doc__
