"""Speed tracking: run the kernel and stage benchmarks (``benchmarks/speed_*.py``) under
pytest-benchmark, turn each benchmark's time into a ratio to the calibration kernel of the
same run, and compare the ratios with the committed baselines
(``benchmarks/speed_baseline.json``).

    python benchmarks/speed.py                # compare; exit 1 on a slowdown
    python benchmarks/speed.py --refresh      # 5 runs; rewrite the baselines (medians)
    python benchmarks/speed.py --spread 5     # 5 runs: min / median / max of each ratio

Rounds are timed in CPU time (``time.process_time``; every benchmark runs on one thread).
A benchmark's ratio is the minimum over its rounds divided by the faster of the two
calibration measurements around it (one before and one after each stage).  A ratio above
``baseline x (1 + tolerance)`` is re-measured once (that benchmark and the calibrations
only) and is a slowdown only when both measurements are above.  Absolute times are recorded
but never compared.  docs/speed-tracking.md explains the method and the tolerance.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the benchmark files, in run order (each measures the calibration at its start and end);
#: not named ``test_*.py``, so ``pytest benchmarks`` (results/als_microbench.md) runs only
#: ``test_bench_als.py``, as before
BENCH_FILES = [f"benchmarks/speed_{stage}.py" for stage in ("topk", "als", "metrics", "split",
                                                             "load")]
BASELINE = ROOT / "benchmarks" / "speed_baseline.json"
CALIBRATION = "test_calibration"
#: relative slack over the baseline ratio before a benchmark counts as slower
#: (docs/speed-tracking.md: chosen from the spread measured over repeated runs)
DEFAULT_TOLERANCE = 1.0
#: pytest-benchmark settings of every run: many short rounds, the minimum kept, timed in
#: the process's CPU time (single-threaded code: time spent descheduled on a busy machine
#: is not counted)
PYTEST_BENCHMARK_ARGS = ["--benchmark-only", "--benchmark-timer=time.process_time",
                         "--benchmark-min-rounds=10",
                         "--benchmark-max-time=0.5", "--benchmark-warmup=off",
                         "--benchmark-disable-gc", "--benchmark-sort=name"]  # fmt: skip


def run_benchmarks(json_path: Path, nodes: list[str] | None = None) -> dict:
    """Run the benchmark files (or only ``nodes``, pytest node ids) in a fresh interpreter;
    pytest-benchmark's JSON report."""
    argv = [sys.executable, "-m", "pytest", *(nodes or BENCH_FILES), "-o", "addopts=",
            "-p", "no:cacheprovider", "-q", f"--benchmark-json={json_path}",
            *PYTEST_BENCHMARK_ARGS]  # fmt: skip
    # a nested run from inside a test session must not inherit that session's settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark run failed ({proc.returncode}):\n{proc.stdout[-4000:]}"
                           f"\n{proc.stderr[-2000:]}")  # fmt: skip
    return json.loads(json_path.read_text())


def ratios(report: dict) -> dict[str, float]:
    """Each benchmark's minimum time / the faster calibration next to it (in run order)."""
    rows = [(b["name"], b["stats"]["min"]) for b in report["benchmarks"]]
    calib = [i for i, (name, _) in enumerate(rows) if name.startswith(CALIBRATION)]
    if not calib:
        raise ValueError("the report has no calibration benchmark")
    out = {}
    for i, (name, seconds) in enumerate(rows):
        if name.startswith(CALIBRATION):
            continue
        before = [rows[j][1] for j in calib if j < i][-1:]
        after = [rows[j][1] for j in calib if j > i][:1]
        out[name] = seconds / min(before + after)
    return out


def calibration_seconds(report: dict) -> list[float]:
    return [b["stats"]["min"] for b in report["benchmarks"] if b["name"].startswith(CALIBRATION)]


@dataclass
class Slower:
    name: str
    ratio: float
    baseline: float
    tolerance: float
    #: the ratio of the first measurement, when this one is the re-measurement
    first: float | None = None

    def __str__(self) -> str:
        limit = self.baseline * (1 + self.tolerance)
        first = "" if self.first is None else f" (first measurement {self.first:.3f})"
        return (f"{self.name}: ratio to the calibration kernel {self.ratio:.3f}{first}, "
                f"baseline {self.baseline:.3f} ({self.ratio / self.baseline:.2f}x; the limit "
                f"is {limit:.3f}, baseline x (1 + {self.tolerance:g}))")  # fmt: skip


def compare(measured: dict[str, float], baseline: dict) -> tuple[list[Slower], list[str]]:
    """(benchmarks slower than their baseline allows, benchmarks without a baseline)."""
    tol = float(baseline.get("tolerance", DEFAULT_TOLERANCE))
    base = baseline["ratios"]
    slower = [Slower(n, r, base[n], tol) for n, r in measured.items()
              if n in base and r > base[n] * (1 + tol)]  # fmt: skip
    return slower, sorted(set(measured) - set(base))


def node_ids(report: dict, names: set[str]) -> list[str]:
    """Pytest node ids of ``names`` and of the calibrations in their files, in run order."""
    files = {b["fullname"].split("::")[0] for b in report["benchmarks"] if b["name"] in names}
    return [b["fullname"] for b in report["benchmarks"] if b["name"] in names or (
            b["name"].startswith(CALIBRATION) and b["fullname"].split("::")[0] in files)]


@dataclass
class Check:
    slower: list[Slower]
    missing: list[str]
    measured: dict[str, float]
    remeasured: dict[str, float]

    @property
    def ok(self) -> bool:
        return not self.slower and not self.missing

    def message(self) -> str:
        lines = []
        if self.slower:
            lines.append(f"{len(self.slower)} benchmark(s) slower than their baseline, "
                         "measured twice:")  # fmt: skip
            lines += [f"  {s}" for s in self.slower]
        if self.missing:
            lines.append(f"no baseline for {', '.join(self.missing)}: refresh the baselines "
                         "(python benchmarks/speed.py --refresh)")  # fmt: skip
        return "\n".join(lines) or "every benchmark within its baseline's tolerance"


def check(work: Path, baseline_path: Path = BASELINE) -> Check:
    """One run compared with the baselines; benchmarks over the limit are re-measured once
    and count as slower only if the second measurement is over the limit too."""
    baseline = json.loads(baseline_path.read_text())
    report = run_benchmarks(work / "speed.json")
    measured = ratios(report)
    slower, missing = compare(measured, baseline)
    remeasured: dict[str, float] = {}
    if slower:
        again = run_benchmarks(work / "speed-again.json",
                               node_ids(report, {s.name for s in slower}))  # fmt: skip
        remeasured = ratios(again)
        first = {s.name: s.ratio for s in slower}
        slower, _ = compare({n: remeasured[n] for n in first}, baseline)
        for s in slower:
            s.first = first[s.name]
    return Check(slower, missing, measured, remeasured)


def measure(runs: int) -> list[dict]:
    """``runs`` full runs of the benchmark file: their pytest-benchmark reports."""
    with tempfile.TemporaryDirectory() as tmp:
        return [run_benchmarks(Path(tmp) / f"run{i}.json") for i in range(runs)]


def refresh(reports: list[dict], tolerance: float, baseline_path: Path = BASELINE) -> dict:
    """Rewrite the baselines from ``reports``: each benchmark's median ratio over them."""
    per_run = [ratios(r) for r in reports]
    names = list(per_run[0])
    last = reports[-1]
    data = {
        "about": "ratio = the benchmark's minimum round time / the faster calibration kernel "
                 "run next to it (benchmarks/speed.py, docs/speed-tracking.md); refresh with "
                 "python benchmarks/speed.py --refresh",
        "tolerance": tolerance,
        "ratios": {n: round(statistics.median(r[n] for r in per_run), 4) for n in names},
        "runs": {n: [round(r[n], 4) for r in per_run] for n in names},
        "calibration_seconds": [[round(s, 6) for s in calibration_seconds(r)] for r in reports],
        "refreshed": datetime.now(UTC).isoformat(timespec="seconds"),
        "pytest_benchmark_version": last.get("version"),
        "commit_info": last.get("commit_info"),
        "machine_info": last.get("machine_info"),
    }
    baseline_path.write_text(json.dumps(data, indent=1) + "\n")
    return data


def spread(reports: list[dict]) -> str:
    """A markdown table of each ratio's min / median / max over ``reports``."""
    per_run = [ratios(r) for r in reports]
    lines = [f"| benchmark (ratios over {len(reports)} runs) | min | median | max | max / min |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name in per_run[0]:
        values = [r[name] for r in per_run]
        lines.append(f"| {name} | {min(values):.3f} | {statistics.median(values):.3f} | "
                     f"{max(values):.3f} | {max(values) / min(values):.2f} |")  # fmt: skip
    cal = [min(calibration_seconds(r)) * 1e3 for r in reports]
    lines.append(f"\nfastest calibration per run (ms): {', '.join(f'{c:.2f}' for c in cal)}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--refresh", action="store_true", help="re-measure and rewrite the baselines")
    p.add_argument("--runs", type=int, default=5, help="runs of --refresh (median kept)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="with --refresh: the tolerance to store (default: the current one)")
    p.add_argument("--spread", type=int, metavar="RUNS", help="only report the ratios' spread")
    p.add_argument("--baseline", type=Path, default=BASELINE)
    args = p.parse_args()
    if args.spread:
        print(spread(measure(args.spread)))
        return 0
    if args.refresh:
        tol = args.tolerance
        if tol is None:
            old = json.loads(args.baseline.read_text()) if args.baseline.is_file() else {}
            tol = float(old.get("tolerance", DEFAULT_TOLERANCE))
        reports = measure(args.runs)
        data = refresh(reports, tol, args.baseline)
        print(spread(reports))
        print(f"wrote {args.baseline}: {len(data['ratios'])} ratios, tolerance {tol:g}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        result = check(Path(tmp), args.baseline)
    for name, ratio in result.measured.items():
        again = result.remeasured.get(name)
        print(f"{name}: {ratio:.3f}" + (f" (again: {again:.3f})" if again is not None else ""))
    print(result.message())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
