"""The `quick` suite's ranking models on any dataset, in this process, with a results cache.

Shared by ``calibrate_synthetic.py`` and ``synthetic_fidelity.py``.  Trials are the
`quick` suite's own (``bench.execution.suites.expand`` with ``--dataset`` replaced): its
random 80/20 split (relevant = rating >= 4) and its per-user stratified 75/25 split (every test item
relevant), default parameters, seeds 0-2 for the models whose results depend on the seed,
one thread; each is an ordinary ``bench.execution.trial.run_trial``.  A model whose estimated memory
does not fit this host (EASE's items x items matrix at 50k items) is left out, with the
reason, by the harness's admission control.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import bench
from bench.execution import admission, suites
from bench.execution.trial import build_adapter, run_trial

#: the models of issue 22's table, in its order
TABLE = ["baseline.Popularity", "recbench.EASE", "recbench.ImplicitALS", "lightfm.WARP",
         "implicit.CosineKNN", "scipy.PureSVD", "implicit.BPR"]
#: the other pure collaborative ranking models of `quick` (no side features, no JVM / torch)
EXTENDED = ["implicit.ALS", "sklearn.TruncatedSVD", "implicit.TFIDFKNN", "implicit.BM25KNN",
            "lightfm.BPR", "lightfm.WARP-kOS", "lightfm.Logistic", "implicit.LMF"]
#: split labels of the two `quick` runs, as the tables name them
SPLITS = {"random": "random 80/20, relevant = rating >= 4",
          "stratified": "user-stratified 75/25, every test item relevant"}


def quick_specs(dataset: str, adapters: list[str]) -> list:
    """The `quick` suite's default-parameter trials of ``adapters`` on ``dataset``."""
    specs = suites.expand(suites.load("quick"), threads=1, datasets=[dataset], adapters=adapters)
    return [s for s in specs if not s.params]


class Cache:
    """NDCG@10 of every trial run, by trial id, in a JSON file (a re-run only adds)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, dict] = {}
        if path is not None and path.is_file():
            self.data = json.loads(path.read_text())

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=1, sort_keys=True))


def evaluate(dataset: str, adapters: list[str], cache: Cache, log=print,
             only: set[str] | None = None, seeds: set[int] | None = None
             ) -> dict[tuple[str, str], float]:
    """(split, adapter) -> NDCG@10 (mean over seeds) of the `quick` trials on ``dataset``;
    models that do not fit this host are absent.  ``only``: just these split methods;
    ``seeds``: just these model seeds."""
    ds = bench.load_dataset(dataset)
    fingerprint = ds.fingerprint()[:16]
    budget, label = admission.memory_budget(None)
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for spec in quick_specs(dataset, adapters):
        method = spec.split.method
        if (only is not None and method not in only) or (seeds is not None
                                                          and spec.seed not in seeds):
            continue
        key = f"{spec.trial_id}:{fingerprint}"
        if key not in cache.data:
            shape = admission.train_shape(ds.n_users, ds.n_items, len(ds.ratings),
                                          spec.split.to_dict())
            model = build_adapter(spec.adapter, spec.params, spec.seed, spec.threads)
            reason = admission.refusal(admission.estimate(model, shape), budget, math.inf, label)
            if reason is not None:
                cache.data[key] = {"status": "skipped", "error": reason}
            else:
                record, _ = run_trial(spec, None)
                cache.data[key] = {"status": record["status"], "error": record["error"],
                                   "ndcg@10": record["metrics"].get("ndcg@10"),
                                   "fit_seconds": record["fit_seconds"]}
            cache.save()
            entry = cache.data[key]
            log(f"{dataset} {method} {spec.adapter} seed {spec.seed}: {entry['status']} "
                f"{entry.get('ndcg@10') or entry.get('error') or ''}")
        entry = cache.data[key]
        if entry["status"] == "ok":
            values[(method, spec.adapter)].append(entry["ndcg@10"])
    return {k: sum(v) / len(v) for k, v in values.items()}


def kendall_tau(a: dict[str, float], b: dict[str, float]) -> tuple[float, int]:
    """Kendall's tau-b between two model -> score maps over their common models, and how
    many models that is."""
    from scipy.stats import kendalltau

    common = sorted(set(a) & set(b))
    if len(common) < 2:
        return math.nan, len(common)
    tau = kendalltau([a[m] for m in common], [b[m] for m in common]).statistic
    return float(tau), len(common)
