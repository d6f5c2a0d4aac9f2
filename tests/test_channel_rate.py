"""``benchmarks.channel_rate`` (#19): every label source is drawn and timed through the generator's path."""

import json
import os

from benchmarks.channel_rate import main
from jaxbeam.data.generate import SOURCES


def test_smoke_run_times_every_source(tmp_path):
    out = tmp_path / "rate.json"
    assert main(["--smoke", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    timed = {r["source"] for r in payload["results"]}
    if payload["sionna_missing"] is None or os.environ.get("CI", "").lower() == "true":  # CI has the extra
        assert timed == set(SOURCES)
    else:
        assert timed == {s for s in SOURCES if not s.startswith("sionna")}
    assert all(r["samples_per_s"] > 0 and (r["K"], r["N"]) == (2, 4) for r in payload["results"])
