"""Regression check between two sets of stored records: ``bench compare BASELINE CURRENT``.

Trials are matched by what defines them (dataset, split, fold, adapter, parameters, seed,
metric options, label), not by thread count or machine.  A quality metric regresses when
it is worse than the baseline by more than its absolute tolerance.  A time regresses when
its ratio to the run's calibration workload (a fixed numpy computation timed by every
worker, see ``bench.execution.calibration``) grew by more than ``time_ratio``: a slower machine
slows the calibration too, so it does not read as a regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.errors import UserError
from bench.evaluation.metrics import lower_is_better
from bench.execution.record import is_test_stage, match_key

#: Absolute tolerance per metric family (the name before "@").
DEFAULT_TOLERANCES = {
    "rmse": 0.005,
    "mae": 0.005,
    "ndcg": 0.005,
    "precision": 0.005,
    "recall": 0.005,
    "map": 0.005,
    "hit_rate": 0.01,
    "mrr": 0.01,
    "coverage": 0.02,
}
TIMES = ("fit_seconds",)
DEFAULT_TIME_RATIO = 2.0
#: Times below this are dominated by noise and never flagged.
MIN_SECONDS = 0.05
#: ``--missing``: a baseline trial absent from current fails the comparison, or is listed
MISSING_POLICIES = ("fail", "warn")


@dataclass
class Comparison:
    rows: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in baseline, not in current
    new: list[str] = field(default_factory=list)  # in current, not in baseline
    failed: list[str] = field(default_factory=list)  # ok in baseline, not ok now
    param_changes: list[str] = field(default_factory=list)  # resolved parameters differ
    #: records left out: computed on earlier contents of their dataset (``store.split_stale``)
    stale: list[str] = field(default_factory=list)
    #: what a baseline trial missing from current does to the verdict: "fail" or "warn"
    missing_policy: str = "fail"

    @property
    def regressions(self) -> list[dict]:
        return [r for r in self.rows if r["regression"]]

    @property
    def ok(self) -> bool:
        missing_fails = self.missing and self.missing_policy == "fail"
        return not self.regressions and not self.failed and not missing_fails

    def summary(self) -> str:
        """The verdict line: regressions, failed and missing trials counted apart."""
        parts = [f"{len(self.regressions)} regression(s)"]
        if self.failed:
            parts.append(f"{len(self.failed)} trial(s) failed now")
        if self.missing:
            effect = "fail" if self.missing_policy == "fail" else "warn: not a failure"
            parts.append(f"{len(self.missing)} trial(s) missing from current "
                         f"(--missing {effect})")
        return (f"{len(self.rows)} comparisons, {', '.join(parts)}: "
                + ("PASS" if self.ok else "FAIL"))


def describe(rec: dict) -> str:
    return f"{rec['adapter']} {rec['dataset']} {rec.get('split_label', '')} fold {rec['fold']}"


def parse_tolerances(items: list[str]) -> dict[str, float]:
    out = dict(DEFAULT_TOLERANCES)
    for item in items:
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise UserError(f"--tolerance takes METRIC=VALUE, got {item!r}")
        if not math.isfinite(number) or number < 0:
            raise UserError(f"--tolerance {item!r}: the value must be a finite number >= 0")
        out[name.strip()] = number
    return out


def tolerance_for(metric: str, tolerances: dict[str, float]) -> float:
    return tolerances.get(metric, tolerances.get(metric.split("@")[0], 0.0))


def normalised_time(rec: dict, key: str) -> float | None:
    seconds = rec.get(key)
    calib = (rec.get("env") or {}).get("calibration_seconds")
    if seconds is None or not calib:
        return None
    return seconds / calib


def compare(
    baseline: list[dict],
    current: list[dict],
    tolerances: dict[str, float] | None = None,
    time_ratio: float = DEFAULT_TIME_RATIO,
    missing: str = "fail",
) -> Comparison:
    """``missing``: whether baseline trials absent from ``current`` fail the comparison
    ("fail") or are only listed ("warn"); either way they are not regressions."""
    if missing not in MISSING_POLICIES:
        raise UserError(f"--missing must be one of {', '.join(MISSING_POLICIES)}, got "
                        f"{missing!r}")
    tolerances = tolerances or DEFAULT_TOLERANCES
    base = {match_key(r): r for r in baseline if is_test_stage(r)}
    cur = {match_key(r): r for r in current if is_test_stage(r)}
    out = Comparison(missing_policy=missing)
    out.missing = sorted(describe(base[k]) for k in base.keys() - cur.keys())
    out.new = sorted(describe(cur[k]) for k in cur.keys() - base.keys())
    for key in sorted(base.keys() & cur.keys()):
        b, c = base[key], cur[key]
        if b["status"] == "ok" and c["status"] != "ok":
            out.failed.append(f"{describe(c)}: {c['status']} {c.get('error') or ''}".strip())
            continue
        if c["status"] != "ok" or b["status"] != "ok":
            continue
        if b["params"] != c["params"]:
            changed = sorted(k for k in set(b["params"]) | set(c["params"])
                             if b["params"].get(k) != c["params"].get(k))
            out.param_changes.append(describe(c) + ": " + ", ".join(
                f"{k} {b['params'].get(k)!r} -> {c['params'].get(k)!r}" for k in changed))
        for metric, bv in sorted(b["metrics"].items()):
            cv = c["metrics"].get(metric)
            if bv is None or metric.startswith("n_") or not math.isfinite(bv):
                continue
            if cv is None or not math.isfinite(cv):  # a metric that vanished is a regression
                out.rows.append({
                    "trial": describe(c), "metric": metric, "baseline": bv, "current": cv,
                    "delta": math.nan, "limit": "finite", "regression": True,
                    "change": "missing" if cv is None else "not finite",
                })
                continue
            delta = cv - bv
            worse = delta if lower_is_better(metric) else -delta
            tol = tolerance_for(metric, tolerances)
            out.rows.append({
                "trial": describe(c), "metric": metric, "baseline": bv, "current": cv,
                "delta": delta, "limit": f"±{tol:g}", "regression": worse > tol + 1e-12,
            })
        for key_t in TIMES:
            bt, ct = normalised_time(b, key_t), normalised_time(c, key_t)
            if bt is None or ct is None or not bt:
                continue
            ratio = ct / bt
            slow = ratio > time_ratio and (c.get(key_t) or 0.0) > MIN_SECONDS
            out.rows.append({
                "trial": describe(c), "metric": f"{key_t} / calibration",
                "baseline": bt, "current": ct, "delta": ratio, "limit": f"x{time_ratio:g}",
                "regression": slow,
            })
    return out


def render(cmp: Comparison, only_changes: bool = True) -> str:
    lines = ["| trial | metric | baseline | current | change | limit | verdict |",
             "|---|---|---|---|---|---|---|"]
    rows = cmp.rows
    if only_changes:
        rows = [r for r in rows if r["regression"] or (
            "calibration" not in r["metric"] and abs(r["delta"]) > 1e-9)]
    for r in sorted(rows, key=lambda r: (not r["regression"], r["trial"], r["metric"])):
        change = r.get("change") or (f"x{r['delta']:.2f}" if "calibration" in r["metric"]
                                     else f"{r['delta']:+.4f}")
        verdict = "**REGRESSION**" if r["regression"] else "ok"
        lines.append(
            f"| {r['trial']} | {r['metric']} | {fmt(r['baseline'])} | {fmt(r['current'])} | "
            f"{change} | {r['limit']} | {verdict} |"
        )
    if len(lines) == 2:
        lines.append("| (no metric changed) | | | | | | |")
    for title, items in (("Parameters changed (e.g. a library default)", cmp.param_changes),
                         ("Failed now (ok in baseline)", cmp.failed),
                         ("Missing from current", cmp.missing),
                         ("New in current (not in baseline)", cmp.new),
                         ("Left out (computed on earlier contents of their dataset; re-run "
                          "to replace them)", cmp.stale)):
        if items:
            lines += ["", f"{title}:", *(f"- {i}" for i in items)]
    lines += ["", cmp.summary()]
    return "\n".join(lines)


def fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"
