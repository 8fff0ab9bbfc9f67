"""Time and memory of each pipeline stage at 1.2 billion ratings, extrapolated from the
scaling recbench measured at 1M-100M ratings.  Reads stored measurements only (no run):

* ``results/scale_stages.json`` (``benchmarks/scale_stages.py``): load, split, Popularity,
  Random's full-catalogue top-10, report, at 1M / 4M / 16M / 32M / 100.5M ratings;
* ``results/als_scaling.md`` (``benchmarks/scale_als.py``): recbench ALS seconds per
  iteration and peak RSS at 1M-32M ratings;
* ``results/scale_runs.md`` (``benchmarks/scale_runs.py``): whole trials at 32M and 100.5M;
* ``results/scale_families.json`` (``benchmarks/scale_families.py``): the other model
  families at 1M and 10M, EASE at 2k-8k items.

Target shape: MLPerf's expanded MovieLens (ml-20mx16x32), 1.2B ratings, 2.2M users, 855K
items (Belletti et al. 2019, "Scaling Up Collaborative Filtering Data Sets through
Randomized Fractal Expansions", arXiv:1905.09874, abstract), random 80/20 split.

Time: ``t = a * x^b`` fitted by least squares in log-log space over the named points
(``x`` = ratings, train ratings, users, users x items or items, per stage).  Memory: peak RSS
``= c + d * ratings`` fitted by least squares (``d``: bytes per rating).  Both are
extrapolations far beyond the measured range (12x past 100M ratings; 4.6x in users, ~110x in
users x items): read them as orders of magnitude.

    python benchmarks/extrapolate_1b.py   # prints the table and writes results/one_billion.md
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from bench.execution.record import QUIET_OTHER_CPUS

ROOT = Path(__file__).resolve().parents[1]
#: ml-20mx16x32 (Belletti et al. 2019, abstract): 1.2B ratings, 2.2M users, 855K items
RATINGS, USERS, ITEMS = 1.2e9, 2.2e6, 855e3
TRAIN = 0.8 * RATINGS  # random 80/20, the scale suite's split
TEST = RATINGS - TRAIN
MACHINE_GIB = 24.0
GIB = 2**30


def power_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(a, b) of ``y = a x^b``, least squares in log-log space (exact through 2 points)."""
    b, log_a = np.polyfit(np.log(xs), np.log(ys), 1)
    return float(math.exp(log_a)), float(b)


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(c, d) of ``y = c + d x``, least squares."""
    d, c = np.polyfit(xs, ys, 1)
    return float(c), float(d)


def md_table(path: Path) -> list[list[str]]:
    """Every table row of a markdown file, cells stripped, header and rule rows included."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in path.read_text().splitlines() if line.startswith("|")]


def num(cell: str) -> float:
    return float(cell.replace(",", "").replace("*", ""))


def m(x: float) -> str:
    """A ratings / users / items count, short (users x items cells in powers of ten)."""
    if x >= 1e11:
        e = int(math.floor(math.log10(x)))
        return f"{x / 10**e:.2g}e{e}"
    return f"{x / 1e9:.3g}B" if x >= 1e9 else f"{x / 1e6:.3g}M" if x >= 1e6 else f"{x / 1e3:.3g}k"


def dur(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 86400:,.0f} days"


def size(nbytes: float) -> str:
    return f"{nbytes / GIB:,.1f} GiB" if nbytes < 1024 * GIB else f"{nbytes / 2**40:,.1f} TiB"


class Table:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.skipped: list[str] = []  # measurements not used, and why

    def time(self, stage: str, source: str, what: str, xs, ys, x_target: float,
             factor: float = 1.0, factor_note: str = "") -> float:
        a, b = power_fit(xs, ys)
        t = a * x_target**b * factor
        last = max(range(len(xs)), key=lambda i: xs[i])
        linear = ys[last] * x_target / xs[last] * factor  # b = 1 from the largest point
        pts = ", ".join(f"{m(x)}: {y:,.3g} s" for x, y in zip(xs, ys, strict=True))
        self.rows.append({"stage": stage, "kind": "time", "value": dur(t), "seconds": t,
                          "exponent": round(b, 2), "x": what, "x_target": x_target,
                          "linear": dur(linear), "points": pts, "source": source,
                          "note": factor_note})
        return t

    def linear(self, stage: str, source: str, what: str, x: float, y: float,
               x_target: float, note: str) -> None:
        """One measured point scaled linearly (b = 1 assumed, not fitted)."""
        t = y * x_target / x
        self.rows.append({"stage": stage, "kind": "time", "value": dur(t), "seconds": t,
                          "exponent": None, "x": what, "x_target": x_target,
                          "linear": dur(t), "points": f"{m(x)}: {y:,.3g} s", "source": source,
                          "note": note})

    def memory(self, stage: str, source: str, xs, mib, x_target: float = RATINGS,
               what: str = "ratings") -> float:
        c, d = linear_fit(xs, mib)
        peak = (c + d * x_target) * 2**20
        pts = ", ".join(f"{m(x)}: {y:,.0f} MiB" for x, y in zip(xs, mib, strict=True))
        self.rows.append({"stage": stage, "kind": "memory", "value": size(peak), "bytes": peak,
                          "exponent": None, "x": what, "x_target": x_target,
                          "points": pts, "source": source,
                          "note": f"{d * 2**20:,.0f} B per {what[:-1]} + {c:,.0f} MiB"})
        return peak

    def arithmetic(self, stage: str, nbytes: float, formula: str, source: str) -> None:
        self.rows.append({"stage": stage, "kind": "memory", "value": size(nbytes),
                          "bytes": nbytes, "exponent": None, "x": "", "x_target": None,
                          "points": formula, "source": source, "note": "arithmetic"})

    def markdown(self) -> str:
        lines = ["| stage | at 1.2B | what | b | b = 1 | x at 1.2B | measured points (fit) "
                 f"| source | in {MACHINE_GIB:g} GiB |",
                 "|---|---:|---|---:|---:|---:|---|---|---|"]
        for r in self.rows:
            b = "" if r["exponent"] is None else f"{r['exponent']:.2f}"
            x = "" if r["x_target"] is None else m(r["x_target"])
            what = r["kind"] + (f" vs {r['x']}" if r["x"] else "")
            note = f" ({r['note']})" if r["note"] else ""
            fits = "" if r["kind"] == "time" else (
                "yes" if r["bytes"] <= MACHINE_GIB * GIB else "**no**")
            lines.append(f"| {r['stage']} | **{r['value']}** | {what} | {b} | "
                         f"{r.get('linear', '')} | {x} | "
                         f"{r['points']}{note} | {r['source']} | {fits} |")
        return "\n".join(lines) + "\n"


def stages(t: Table) -> None:
    src = "results/scale_stages.json"
    rows = json.loads((ROOT / src).read_text())[-3:]  # 16M, 32M, 100.5M: past fixed costs
    n = [r["ratings"] for r in rows]
    users = [r["users"] for r in rows]
    cells = [r["users"] * r["items"] for r in rows]
    for key, label in (("load", "load: parse + write cache"), ("load_cached", "load from cache"),
                       ("split_random", "split random 80/20"),
                       ("split_temporal", "split temporal 80/20")):
        t.time(label, src, "ratings", n, [r[key][0] for r in rows], RATINGS)
        t.memory(label, src, n, [r[key][1] for r in rows])
    t.time("fit Popularity", src, "ratings", n, [r["fit_popularity"][0] for r in rows], TRAIN)
    t.memory("trial worker (Popularity)", src, n, [r["fit_popularity"][1] for r in rows])
    t.time("top-10 Popularity (one shared order)", src, "users", users,
           [r["recommend_popularity"][0] for r in rows], USERS)
    t.time("top-10 over the full catalogue (Random's scores)", src, "users x items", cells,
           [r["recommend_random"][0] for r in rows], USERS * ITEMS)
    t.time("significance + leaderboard", src, "users", users, [r["report"][0] for r in rows],
           USERS, factor_note="one trial per model")
    t.time("report with figures", src, "users", users, [r["report_plots"][0] for r in rows],
           USERS)


def als(t: Table) -> None:
    src = "results/als_scaling.md"
    pts = [(num(r[0]), num(r[2]), num(r[6])) for r in md_table(ROOT / src)[2:] if r[1] == "32"]
    k_ratio = {r[1]: num(r[2]) for r in md_table(ROOT / src)[2:] if r[0] == "32,000,000"}
    scale64 = k_ratio["64"] / k_ratio["32"]
    per_it = t.time("fit recbench.ALS (explicit), one iteration", src, "ratings",
                    [p[0] for p in pts], [p[1] for p in pts], TRAIN, factor=scale64,
                    factor_note=f"K=32 fitted, x {scale64:.2f} for K=64 (the K=64 / K=32 "
                    "ratio at 32M)")
    linear = 15 * pts[-1][1] * scale64 * TRAIN / pts[-1][0]
    t.rows.append({**t.rows[-1], "stage": "fit recbench.ALS (explicit), 15 iterations K=64",
                   "value": dur(15 * per_it), "seconds": 15 * per_it, "linear": dur(linear),
                   "note": "15 x the row above"})
    t.memory("fit recbench.ALS process", src, [p[0] for p in pts], [p[2] * 1024 for p in pts])


def scale_runs(t: Table) -> None:
    src = "results/scale_runs.md"
    table = md_table(ROOT / src)
    trials = {}
    for r in table:
        if len(r) == 10 and r[1] == "random 80/20" and r[0] != "adapter":
            trials.setdefault(r[0], []).append(r)
    shapes = {25_600_000: (200_948, 84_432), 80_384_406: (480_189, 17_770)}  # the sections
    pop = sorted(trials["baseline.Popularity"], key=lambda r: num(r[8]))
    als_ = sorted(trials["recbench.ImplicitALS"], key=lambda r: num(r[8]))
    n = [num(r[8]) for r in pop]
    overhead = [num(r[6]) - num(r[3]) - num(r[4]) - num(r[5]) for r in pop]
    t.time("trial overhead (cached load, split, CSR, metrics, per-user file)", src,
           "train ratings", n, overhead, TRAIN, factor_note="trial s - prepare - fit - recommend,"
           " Popularity")
    n = [num(r[8]) for r in als_]
    t.time("fit recbench.ImplicitALS, 15 iterations K=64", src, "train ratings", n,
           [num(r[4]) for r in als_], TRAIN)
    t.time("top-10 from factors (recbench.ImplicitALS, K=64)", src, "users x items",
           [shapes[int(x)][0] * shapes[int(x)][1] for x in n], [num(r[5]) for r in als_],
           USERS * ITEMS)
    t.memory("trial worker (recbench.ImplicitALS)", src, n,
             [num(r[7]) * 1024 for r in als_], TRAIN, "train ratings")


def busy(rows: list[dict]) -> str:
    """How loaded the shared machine was during the new measurements (``host_load``)."""
    load = [r["other_cpus"] for r in rows if r.get("other_cpus") is not None]
    return f"other processes used up to {max(load):.1f} CPUs meanwhile" if load else ""


def quiet(rows: list[dict]) -> bool:
    """Whether every trial ran on a quiet host (recbench's rule, ``QUIET_OTHER_CPUS``): only
    then are its times a result; peak memory does not depend on the load."""
    return all(r.get("other_cpus") is not None and r["other_cpus"] <= QUIET_OTHER_CPUS
               for r in rows)


def families(t: Table) -> None:
    src = "results/scale_families.json"
    path = ROOT / src
    if not path.exists():
        return
    rows = [r for r in json.loads(path.read_text()) if r["status"] == "ok"]
    # the 32M point of results/scale_runs.md: fit seconds / iterations of the scale suite
    runs = {r[0]: r for r in md_table(ROOT / "results/scale_runs.md")
            if len(r) == 10 and r[1] == "random 80/20" and r[8] == "25,600,000"}
    full = {"implicit.ALS": 15, "implicit.BPR": 50, "lightfm.WARP": 5, "scipy.PureSVD": None}
    for adapter in ("implicit.ALS", "implicit.BPR", "lightfm.WARP", "scipy.PureSVD",
                    "spark.ALS"):
        mine = [r for r in rows if r["adapter"] == adapter]
        if len(mine) < 2:
            continue
        xs = [r["train_ratings"] for r in mine]
        ys = [r["fit_seconds"] / (r["iterations"] or 1) for r in mine]
        unit = "one fit" if adapter == "scipy.PureSVD" else "one iteration / epoch"
        notes = [busy(mine)]
        if adapter in runs:  # the scale suite's own 32M trial checks the fit (not fitted on)
            a, b = power_fit(xs, ys)
            measured = num(runs[adapter][4]) / (full[adapter] or 1)
            notes.append(f"check at 25.6M: the fit says {a * 25.6e6**b:,.3g} s, "
                         f"results/scale_runs.md measured {measured:,.3g} s")
        if quiet(mine):
            t.time(f"fit {adapter}, {unit}", src, "train ratings", xs, ys, TRAIN,
                   factor_note="; ".join(n for n in notes if n))
        else:
            t.skipped.append(f"fit {adapter}, {unit}: " + "; ".join(notes)
                             + f" (recbench's quiet limit: {QUIET_OTHER_CPUS:g} CPUs)")
            if adapter in runs:
                t.linear(f"fit {adapter}, the scale suite's parameters", "results/scale_runs.md",
                         "train ratings", 25.6e6, num(runs[adapter][4]), TRAIN,
                         "one size only: b = 1 assumed, not fitted")
        t.memory(f"trial worker ({adapter})", src, xs, [r["peak_rss_mb"] for r in mine], TRAIN,
                 "train ratings")
    ease = sorted((r for r in rows if r["adapter"] == "recbench.EASE"), key=lambda r: r["items"])
    if len(ease) >= 2 and not quiet(ease):
        t.skipped.append(f"fit recbench.EASE: {busy(ease)}; times not extrapolated")
    elif len(ease) >= 2:
        t.time("fit recbench.EASE (items x items inverse)", src, "items",
               [r["items"] for r in ease], [r["fit_seconds"] for r in ease], ITEMS,
               factor_note=busy(ease))


def arithmetic(t: Table) -> None:
    """Structures whose size follows from the code's dtypes and the target shape."""
    t.arithmetic("EASE dense item-item matrix", ITEMS**2 * 8,
                 "items^2 x 8 B (float64; MATRICES_ALIVE = 1)", "bench/models/ease.py")
    t.arithmetic("dataset columns, no timestamps (ml-20mx16x32 has none)", RATINGS * 12,
                 "ratings x (int32 user + int32 item + float32 value)", "bench/data/model.py")
    t.arithmetic("dataset columns with int64 timestamps", RATINGS * 20,
                 "ratings x (12 B + int64 timestamp)", "bench/data/model.py")
    t.arithmetic("split random: permutation + fold_of_row", RATINGS * (8 + 1),
                 "ratings x (int64 permutation + int8 fold)", "bench/splitting/splits.py")
    t.arithmetic("ALS factors, users + items, K=64 float32", (USERS + ITEMS) * 64 * 4,
                 "(users + items) x 64 x 4 B", "bench/models/als.py (float32)")
    t.arithmetic("train CSR of seen items (exclusion in top-K)", TRAIN * 8 + USERS * 8,
                 "train x (int32 index + float32 value) + int64 indptr",
                 "bench/evaluation/evaluate.py")
    t.arithmetic("test pair keys for the metrics", TEST * 8, "test ratings x int64",
                 "bench/evaluation/evaluate.py (relevant_pairs)")
    t.arithmetic("top-10 lists of every user", USERS * 10 * 4, "users x K x int32",
                 "bench/evaluation/ranking.py")
    t.arithmetic("score block while ranking", 256 * 2**20,
                 "batch_size keeps a float32 users x items block near 256 MiB",
                 "bench/evaluation/ranking.py")
    t.arithmetic("per-user metric arrays (one trial, K=10)", USERS * 8 * 8,
                 "users x 8 arrays (user, train_count, 6 metrics) x 8 B; the per-user .npz "
                 "is at most this (compressed)", "bench/evaluation/evaluate.py + metrics.py")
    t.arithmetic("harness per-trial model of admission control", 64 * TRAIN + 128 *
                 (USERS + ITEMS) + (400 + 256) * 2**20,
                 "64 B x train + 128 B x (users + items) + 656 MiB",
                 "bench/execution/admission.py")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "results/one_billion.md")
    args = p.parse_args()
    t = Table()
    stages(t)
    als(t)
    scale_runs(t)
    families(t)
    arithmetic(t)
    text = (
        "# Each stage at 1.2 billion ratings: extrapolated, not measured\n\n"
        "Written by `python benchmarks/extrapolate_1b.py` from the measurements named in the "
        "source column.  Target: MLPerf's expanded MovieLens (ml-20mx16x32: 1.2B ratings, "
        "2.2M users, 855K items; Belletti et al. 2019, arXiv:1905.09874), random 80/20 "
        f"(train {m(TRAIN)}).  Time rows: `t = a x^b` through the listed points (b = the "
        "fitted exponent), evaluated at the x of the target, and beside it (b = 1) the largest "
        "measured point scaled linearly; memory rows: peak RSS `c + d x` "
        "through the listed points, or arithmetic from the code's dtypes.  The measured "
        "machine: 2 cores (2 threads per trial), 23.5 GiB, shared with other jobs.  Every "
        "figure is an EXTRAPOLATION (12x past the largest measured size in ratings, 4.6x in "
        "users, ~110x in users x items): orders of magnitude, not predictions.\n\n"
        + t.markdown()
    )
    if t.skipped:
        text += ("\nMeasured on a busy host, so not extrapolated (re-run "
                 "`python benchmarks/scale_families.py` on a quiet machine):\n\n"
                 + "".join(f"* {line}\n" for line in t.skipped))
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(t.rows, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
