"""benchmarks/extrapolate_1b.py on the committed measurements: its fits and the table it writes
(docs/one-billion.md quotes that table)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def extrapolate():
    spec = importlib.util.spec_from_file_location(
        "extrapolate_1b", ROOT / "benchmarks" / "extrapolate_1b.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_power_fit_goes_through_two_points_and_recovers_a_law(extrapolate):
    a, b = extrapolate.power_fit([10.0, 1000.0], [2.0, 200.0])
    assert b == pytest.approx(1.0)
    assert a == pytest.approx(0.2)
    xs = [1e6, 4e6, 16e6]
    a, b = extrapolate.power_fit(xs, [3e-7 * x**1.3 for x in xs])
    assert (a, b) == (pytest.approx(3e-7), pytest.approx(1.3))


def test_linear_fit_gives_bytes_per_rating(extrapolate):
    c, d = extrapolate.linear_fit([1e6, 2e6, 3e6], [110.0, 120.0, 130.0])
    assert c == pytest.approx(100.0)
    assert d == pytest.approx(1e-5)


def test_table_from_the_committed_measurements(extrapolate, tmp_path, monkeypatch, capsys):
    out = tmp_path / "one_billion.md"
    monkeypatch.setattr("sys.argv", ["extrapolate_1b.py", "--out", str(out)])
    extrapolate.main()
    text = out.read_text()
    assert capsys.readouterr().out.strip() == text.strip()
    rows = json.loads(out.with_suffix(".json").read_text())
    stages = {r["stage"] for r in rows}
    # each stage of the pipeline is there: load, split, fit, top-K, report, structures
    for stage in ("load: parse + write cache", "split random 80/20", "fit Popularity",
                  "fit recbench.ImplicitALS, 15 iterations K=64",
                  "top-10 from factors (recbench.ImplicitALS, K=64)",
                  "significance + leaderboard", "EASE dense item-item matrix"):
        assert stage in stages
    for r in rows:
        assert r["source"] and (ROOT / r["source"].split()[0]).exists()
        if r["kind"] == "time":
            assert math.isfinite(r["seconds"]) and r["seconds"] > 0
            if r["exponent"] is not None:  # a fit: at least two measured sizes
                assert r["points"].count(":") >= 2
            else:  # one size scaled linearly, and the row says so
                assert "b = 1 assumed" in r["note"]
        else:
            assert r["bytes"] > 0
    ease = next(r for r in rows if r["stage"] == "EASE dense item-item matrix")
    assert ease["bytes"] == pytest.approx(855e3**2 * 8)
