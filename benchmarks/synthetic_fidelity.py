"""Does synthetic data rank models like real data?  The `quick` ranking models on real
ML-100k, the latent-structure generator, the twin of ML-100k at several scales and the
popularity-only generator, and the targets of issue 22.

Every trial is the `quick` suite's own (``_quick_models``: both quick splits, default
parameters, seeds 0-2 for stochastic models, one thread), run in this process; NDCG@10 of a
model is the mean over its seeds.  Targets, per split:

* generator vs real ML-100k: Kendall's tau of the model order >= 0.8; popularity below the
  best model by at least half of the real gap; each model's NDCG@10 within +-25% of real;
* twin at scale 1 vs real: tau >= 0.85;
* twin at scale S vs twin at scale 1: tau >= 0.7 over the models that fit this host
  (admission control leaves out, e.g., EASE's items x items matrix beyond ~40k items).

Results are cached by trial in ``--cache`` (a re-run adds only what is missing).

    python benchmarks/synthetic_fidelity.py [--scales 32] [--extended] \
        [--out results/synthetic_fidelity.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quick_models import EXTENDED, SPLITS, TABLE, Cache, evaluate, kendall_tau  # noqa: E402

from bench.reporting import datasets as dataset_info  # noqa: E402

REAL = "ml-100k"
SHAPE = "users=943,items=1682,ratings=100000,seed=0"
GENERATOR = f"synthetic:{SHAPE}"
OLD = f"synthetic-popularity:{SHAPE}"


def twin(scale: int) -> str:
    return f"synthetic:like=ml-100k,scale={scale},seed=0"


def short(adapter: str) -> str:
    return adapter.split(".", 1)[1] if adapter.startswith(("baseline.", "recbench.", "scipy.")) \
        else adapter


def ndcg_table(results: dict, labels: dict, split: str, models: list[str]) -> list[str]:
    head = ["data", *[short(m) for m in models]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, label in labels.items():
        row = results[name]
        cells = [f"{row[(split, m)]:.3f}" if (split, m) in row else "-" for m in models]
        best = max((row[(split, m)] for m in models if (split, m) in row), default=None)
        cells = [f"**{c}**" if best is not None and c == f"{best:.3f}" else c for c in cells]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def of_split(row: dict, split: str, models: list[str]) -> dict[str, float]:
    return {m: row[(split, m)] for m in models if (split, m) in row}


def check(ok: bool) -> str:
    return "yes" if ok else "**no**"


def targets(results: dict, split: str, models: list[str], scales: list[int]) -> list[str]:
    real = of_split(results[REAL], split, models)
    gen = of_split(results[GENERATOR], split, models)
    lines = [f"### {SPLITS[split]}", ""]
    tau, n = kendall_tau(gen, real)
    lines.append(f"- generator vs real: Kendall's tau {tau:.3f} over {n} models "
                 f"(target >= 0.8: {check(tau >= 0.8)})")
    pop = "baseline.Popularity"
    real_gap = max(real.values()) - real[pop]
    gen_gap = max(gen.values()) - gen[pop]
    lines.append(f"- popularity below the best model: real gap {real_gap:.3f}, generator gap "
                 f"{gen_gap:.3f} = {gen_gap / real_gap:.2f} of the real gap (target >= 0.5: "
                 f"{check(gen_gap >= 0.5 * real_gap)})")
    ratios = {m: gen[m] / real[m] for m in real if m in gen}
    outside = [f"{short(m)} {r:.2f}" for m, r in ratios.items() if abs(r - 1) > 0.25]
    lines.append("- generator NDCG@10 / real, per model: " + ", ".join(
        f"{short(m)} {r:.2f}" for m, r in ratios.items()) + f" (target 0.75-1.25 for each: "
        f"{check(not outside)}{'; outside: ' + ', '.join(outside) if outside else ''})")
    one = of_split(results[twin(1)], split, models)
    tau1, n1 = kendall_tau(one, real)
    lines.append(f"- twin (scale 1) vs real: tau {tau1:.3f} over {n1} models (target >= 0.85: "
                 f"{check(tau1 >= 0.85)})")
    for scale in scales:
        big = of_split(results[twin(scale)], split, models)
        tau_s, n_s = kendall_tau(big, one)
        missing = [short(m) for m in one if m not in big]
        lines.append(f"- twin at scale {scale} vs scale 1: tau {tau_s:.3f} over the {n_s} "
                     f"models that fit (target >= 0.7: {check(tau_s >= 0.7)})"
                     + (f"; not run (do not fit this host, or left out by --big-models): "
                        f"{', '.join(missing)}"
                        if missing else ""))
    old = of_split(results[OLD], split, models)
    tau_old, _ = kendall_tau(old, real)
    lines.append(f"- for reference, the popularity-only generator vs real: tau {tau_old:.3f}")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="32", help="twin scales besides 1, e.g. 32,320")
    ap.add_argument("--one-seed", default="",
                    help="twin scales at which stochastic models run seed 0 only, e.g. 320")
    ap.add_argument("--big-models", default="",
                    help="on the --big-scales, only these models (comma-separated adapter "
                    "names; default: all of the table's), for a host short of time")
    ap.add_argument("--big-scales", default="", help="twin scales --big-models applies to")
    ap.add_argument("--extended", action="store_true",
                    help="also the other pure collaborative models (at scale 1): "
                    f"{', '.join(EXTENDED)}")
    ap.add_argument("--out", type=Path, default=Path("results/synthetic_fidelity.md"))
    ap.add_argument("--cache", type=Path, default=Path("results/local/fidelity_cache.json"))
    args = ap.parse_args()
    scales = [int(s) for s in args.scales.split(",") if s]
    one_seed = {twin(int(s)) for s in args.one_seed.split(",") if s}
    big = {twin(int(s)) for s in args.big_scales.split(",") if s}
    models = TABLE + (EXTENDED if args.extended else [])
    labels = {REAL: "real ML-100k", GENERATOR: f"`{GENERATOR}`", twin(1): f"`{twin(1)}`",
              **{twin(s): f"`{twin(s)}`" for s in scales},
              OLD: f"`{OLD}` (popularity only)"}
    cache = Cache(args.cache)
    start, load_before = time.time(), os.getloadavg()[0]
    results = {}
    for name in labels:  # the extended models at scale 1 only (their tau is against real)
        which = TABLE if name in {twin(s) for s in scales} else models
        if name in big and args.big_models:
            which = [m for m in which if m in args.big_models.split(",")]
        results[name] = evaluate(name, which, cache, log=lambda m: print(m, flush=True),
                                 seeds={0} if name in one_seed else None)
    argv = " ".join(sys.argv[1:])
    lines = [
        "# Synthetic data vs real ML-100k: the order of the `quick` ranking models",
        "",
        f"Command: `python benchmarks/synthetic_fidelity.py {argv}".rstrip() + "` "
        f"({time.time() - start:.0f} s incl. cached trials; {platform.machine()}, one thread "
        "per trial).  NDCG@10 of the `quick` suite's trials (default parameters; mean over "
        "seeds 0-2 for stochastic models" + (f"; seed 0 only on {', '.join(sorted(one_seed))}"
                                               if one_seed else "")
        + "), run on each dataset; best of a row in bold; `-` = not run because it does not "
        "fit this host's memory (admission control)" + (" or left out by --big-models"
                                                          if args.big_models else "")
        + f".  1-minute load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} "
        "at the end (the NDCG figures do not depend on it; the time does).",
        "",
    ]
    for split in SPLITS:
        lines += [f"## {SPLITS[split]}", "", *ndcg_table(results, labels, split, models), ""]
    lines += ["## Targets (issue 22)", ""]
    for split in SPLITS:
        lines += targets(results, split, TABLE, scales)
    if args.extended:
        lines += [f"With the other pure collaborative models of `quick` ({', '.join(EXTENDED)})"
                  f", {len(models)} models:", ""]
        for split in SPLITS:
            real = of_split(results[REAL], split, models)
            taus = [kendall_tau(of_split(results[name], split, models), real)
                    for name in (GENERATOR, twin(1))]
            lines.append(f"- {SPLITS[split]}: generator vs real tau {taus[0][0]:.3f} over "
                         f"{taus[0][1]}, twin (scale 1) vs real tau {taus[1][0]:.3f} over "
                         f"{taus[1][1]}")
        lines.append("")
    lines += ["## The datasets", "", dataset_info.describe(list(labels), None)[0], ""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
