"""What every experiment smoke test checks about the files an experiment module wrote."""

import json


def check_results_files(name: str, report, results) -> dict:
    """``results/NAME.md`` / ``.json`` / ``.png`` exist and agree with ``report``; returns the JSON payload."""
    md = (results / f"{name}.md").read_text()
    payload = json.loads((results / f"{name}.json").read_text())
    assert payload["name"] == name and payload["settings"]["preset"] == "smoke"
    assert report.rows and all(len(r) == len(report.header) for r in report.rows)
    assert "Run time:" in md and f"python -m experiments.{name}" in md
    if report.plot is not None:
        assert (results / f"{name}.png").stat().st_size > 1000
    return payload
