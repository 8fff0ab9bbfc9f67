"""Headline findings of the protocol ablations, in figures, from stored records only.

For the ``ablation-protocol`` group: per split, each model's full-catalogue NDCG@10 and
its sampled-protocol NDCG@10 (1 relevant + N sampled negatives) with the rank of the model
under each, and every pair of models whose order the sampled protocol reverses; then how
the order of models by full-catalogue NDCG@10 changes between splits (leave-one-out vs
hold-out, random vs temporal: Kendall's tau and the reversed pairs); and beyond-accuracy
metrics beside NDCG.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from bench.execution.record import Record

GROUP = "ablation-protocol"
FULL, SAMPLED = "ndcg@10", "sampled_ndcg@10"
BEYOND = (("novelty@10", "novelty"), ("ild@10", "ILD"), ("arp@10", "ARP"),
          ("gini@10", "Gini"), ("coverage@10", "coverage"))


def _means(records: Iterable[Mapping]) -> dict[str, dict[str, dict[str, float]]]:
    """split label -> adapter -> metric -> mean over the records (seeds, folds)."""
    sums: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for raw in records:
        rec = Record.of(raw)
        if rec.group != GROUP or not rec.is_ok_test() or rec.label != "defaults":
            continue
        for name, value in rec.metrics.items():
            if isinstance(value, int | float) and not math.isnan(value):
                sums[rec.split_label][rec.adapter][name].append(value)
        for name, value in (rec.get("intervals") or {}).items():
            if isinstance(value, int | float) and not math.isnan(value):
                sums[rec.split_label][rec.adapter][f"±{name}"].append(value)
        cold = rec.get("cold_users") or {}
        if cold.get("share") is not None:
            sums[rec.split_label][rec.adapter]["cold_share"].append(float(cold["share"]))
            sums[rec.split_label][rec.adapter]["cold_n"].append(float(cold.get("n", 0)))
            # no cold user: the warm users are all of them
            warm = cold.get("warm_metrics") or (rec.metrics if not cold.get("n") else {})
            for name in (FULL, SAMPLED):
                if isinstance(warm.get(name), int | float):
                    sums[rec.split_label][rec.adapter][f"warm:{name}"].append(warm[name])
    return {s: {a: {m: sum(v) / len(v) for m, v in ms.items()} for a, ms in by_a.items()}
            for s, by_a in sums.items()}


def _order(values: dict[str, float]) -> list[str]:
    return sorted(values, key=lambda a: (-values[a], a))


def _kendall_tau(a: dict[str, float], b: dict[str, float]) -> tuple[float, list[tuple]]:
    """Kendall's tau-a between two scorings of the same models, and the reversed pairs."""
    common = sorted(set(a) & set(b))
    concordant = discordant = 0
    reversed_pairs = []
    for x, y in itertools.combinations(common, 2):
        s = (a[x] - a[y]) * (b[x] - b[y])
        if s > 0:
            concordant += 1
        elif s < 0:
            discordant += 1
            reversed_pairs.append((x, y))
    n = concordant + discordant
    return ((concordant - discordant) / n if n else math.nan), reversed_pairs


def findings(records: Iterable[Mapping]) -> str:
    """The markdown section (empty when no record of the group exists)."""
    means = _means(records)
    if not means:
        return ""
    out = ["## Protocol ablations: what the evaluation protocol does to the model order", ""]
    out += ["ML-100k, every test item relevant, defaults, one thread.  Warm users = test "
            "users with at least one train row.  Full = ranking over "
            "every item the user has not rated in train; sampled = each relevant item "
            "ranked among 100 items the user never rated (the same draws for every model).  "
            "One seed: a reversed pair whose gap is inside the models' intervals is a "
            "reversal of noise, one outside them a reversal of the conclusion.", ""]
    for split in sorted(means):
        by_model = means[split]
        full = {a: m[FULL] for a, m in by_model.items() if FULL in m}
        samp = {a: m[SAMPLED] for a, m in by_model.items() if SAMPLED in m}
        warm = {a: m[f"warm:{FULL}"] for a, m in by_model.items() if f"warm:{FULL}" in m}
        if not full:
            continue
        rank_full = {a: i + 1 for i, a in enumerate(_order(full))}
        rank_samp = {a: i + 1 for i, a in enumerate(_order(samp))}
        rank_warm = {a: i + 1 for i, a in enumerate(_order(warm))}
        out += [f"### {split}", ""]
        out += _cold_text(by_model, full, warm)
        out += ["| model | NDCG@10 full | rank | NDCG@10 warm users | rank | NDCG@10 sampled | "
                "rank | " + " | ".join(label for _, label in BEYOND) + " |",
                "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(BEYOND)]
        for a in _order(full):
            m = by_model[a]
            beyond = " | ".join(_fmt(m.get(key)) for key, _ in BEYOND)
            out.append(f"| {a} | {full[a]:.4f} | {rank_full[a]} | {_fmt(warm.get(a))} | "
                       f"{rank_warm.get(a, '')} | {_fmt(samp.get(a))} | "
                       f"{rank_samp.get(a, '')} | {beyond} |")
        tau, flips = _kendall_tau(full, samp)
        out += ["", f"Kendall's tau between the two orders: {tau:.2f}; "
                f"{len(flips)} of {math.comb(len(full), 2)} pairs reversed."]
        for x, y in sorted(flips, key=lambda p: -abs(full[p[0]] - full[p[1]]))[:5]:
            hi_s, lo_s = (x, y) if samp[x] > samp[y] else (y, x)
            half = max(by_model[lo_s].get(f"±{FULL}", math.nan),
                       by_model[hi_s].get(f"±{FULL}", math.nan))
            out.append(f"- With 100 sampled negatives {hi_s} ranks above {lo_s} "
                       f"({samp[hi_s]:.4f} vs {samp[lo_s]:.4f}); with the full catalogue "
                       f"{lo_s} is ahead by {full[lo_s] - full[hi_s]:.4f} NDCG@10 "
                       f"({full[lo_s]:.4f} vs {full[hi_s]:.4f}; 95% interval over users "
                       f"±{half:.4f} each).")
        out.append("")
    splits = sorted(means)
    if len(splits) > 1:
        for metric, what in ((FULL, "full-catalogue NDCG@10"),
                             (f"warm:{FULL}", "NDCG@10 over warm users only")):
            if metric != FULL and not any(
                    metric in v for s in splits for v in means[s].values()):
                continue
            out += [f"### The order of models across splits ({what})", ""]
            for s1, s2 in itertools.combinations(splits, 2):
                a = {m: v[metric] for m, v in means[s1].items() if metric in v}
                b = {m: v[metric] for m, v in means[s2].items() if metric in v}
                tau, flips = _kendall_tau(a, b)
                text = "; ".join(f"{x} / {y}" for x, y in flips[:6]) or "none"
                out.append(f"- {s1} vs {s2}: Kendall's tau {tau:.2f}, {len(flips)} pair(s) "
                           f"reversed ({text}{', ...' if len(flips) > 6 else ''}).")
            out.append("")
    return "\n".join(out)


def _cold_text(by_model: dict[str, dict[str, float]], full: dict[str, float],
               warm: dict[str, float]) -> list[str]:
    """What the split's cold users (evaluated users without train rows, ranked by each
    model's fallback for unknown users) do to the table, in one paragraph."""
    shares = [m["cold_share"] for m in by_model.values() if "cold_share" in m]
    if not shares:
        return ["Cold test users: not recorded (records before `cold_users`).", ""]
    share = max(shares)
    n = max(m.get("cold_n", 0) for m in by_model.values())
    if not n:
        return ["Every test user has train rows (no cold users).", ""]
    tau, flips = _kendall_tau(full, warm)
    return [f"**{n:.0f} test users ({share:.1%}) have no train rows**: every model ranks them "
            "by its fallback for an unknown user (most: item popularity), so the overall "
            "NDCG@10 and its order largely measure that fallback.  Over the warm users "
            f"alone the order has Kendall's tau {tau:.2f} with the overall one "
            f"({len(flips)} pair(s) reversed).", ""]


def _fmt(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
