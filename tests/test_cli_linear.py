"""The `jaxbeam linear` command prints the linear-precoder table; user mistakes exit 2 without a traceback."""

import re

import pytest

from jaxbeam.cli import main


def test_linear_prints_the_linear_precoder_table(capsys):
    assert main(["linear", "--samples", "64", "--P", "1", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\|\s*\(\d, \d+\)", line)]
    assert len(rows) == 2 * 2 * 4  # (K, N) settings x P levels x {MRT, ZF, RZF, RZF_BAL}
    by_key = {}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        by_key[(cells[0], cells[1], cells[2])] = [float(c) for c in cells[3:]]
    # RZF beats MRT on every utility at every setting
    for (kn, p, name), vals in by_key.items():
        if name == "RZF":
            assert all(r > m for r, m in zip(vals, by_key[(kn, p, "MRT")], strict=True))
        if name == "RZF_BAL":  # same directions, balanced powers: a higher min rate
            assert vals[1] > by_key[(kn, p, "RZF")][1]


@pytest.mark.parametrize("argv", [["linear", "--samples", "0"], ["linear", "--P", "-1"], ["nonsense"]])
def test_bad_values_exit_2_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err
