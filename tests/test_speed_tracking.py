"""Speed tracking in CI: recbench's kernel and stage benchmarks (benchmarks/speed_*.py,
pytest-benchmark) against the committed baselines (benchmarks/speed_baseline.json), each as a
ratio to a calibration kernel measured in the same run; never an absolute time
(docs/speed-tracking.md)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_speed():
    spec = importlib.util.spec_from_file_location("recbench_speed", ROOT / "benchmarks/speed.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


speed = _load_speed()


def _bench(file: str, name: str, seconds: float) -> dict:
    return {"name": name, "fullname": f"{file}::{name}", "stats": {"min": seconds}}


def test_ratios_use_the_faster_calibration_next_to_each_benchmark():
    one, two = speed.BENCH_FILES[:2]
    report = {"benchmarks": [
        _bench(one, "test_calibration_start", 0.010),
        _bench(one, "test_a", 0.030),
        _bench(one, "test_calibration_end", 0.020),  # a loaded moment: not a's calibration
        _bench(two, "test_calibration_start", 0.030),
        _bench(two, "test_b", 0.050),
        _bench(two, "test_calibration_end", 0.020),
    ]}  # fmt: skip
    assert speed.ratios(report) == pytest.approx({"test_a": 3.0, "test_b": 2.5})
    # a re-measurement runs the named benchmarks and the calibrations of their files, in order
    assert speed.node_ids(report, {"test_b"}) == [
        f"{two}::{n}" for n in ("test_calibration_start", "test_b", "test_calibration_end")]


def test_a_ratio_over_the_tolerance_is_named_with_its_ratio_and_baseline():
    baseline = {"tolerance": 0.5, "ratios": {"test_a": 2.0, "test_b": 1.0}}
    slower, missing = speed.compare({"test_a": 3.1, "test_b": 1.49, "test_new": 1.0}, baseline)
    assert [s.name for s in slower] == ["test_a"] and missing == ["test_new"]
    slower[0].first = 3.3  # as ``check`` marks a re-measured benchmark
    text = speed.Check(slower, missing, {}, {}).message()
    assert ("test_a: ratio to the calibration kernel 3.100 (first measurement 3.300), "
            "baseline 2.000 (1.55x") in text
    assert "limit is 3.000" in text and "no baseline for test_new" in text


def test_the_committed_baseline_names_every_benchmark_and_its_machine():
    baseline = json.loads(speed.BASELINE.read_text())
    source = "".join((ROOT / f).read_text() for f in speed.BENCH_FILES)
    for name, ratio in baseline["ratios"].items():
        assert f"def {name.split('[')[0]}(" in source, name
        assert ratio > 0 and len(baseline["runs"][name]) >= 3
    assert 0 < baseline["tolerance"] <= 2
    assert baseline["machine_info"]["cpu"]["brand_raw"]


@pytest.mark.slow
def test_no_kernel_or_stage_is_slower_than_its_baseline(tmp_path):
    """The CI step: one run of the benchmark file; a ratio over its limit is re-measured once
    and fails the test only if it is over again."""
    result = speed.check(tmp_path)
    assert result.ok, result.message()
