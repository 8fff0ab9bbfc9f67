"""Dataset characteristics in reports: ``python -m bench describe DATASET [DATASET ...]``
and the leaderboard's "Datasets" section.

For each dataset the numbers of ``bench.data.characteristics`` (users, items, ratings,
density, Gini of item popularity and user activity, degree quantiles, mean rating), one
column per dataset; and one figure, the complementary cumulative distribution of both
degrees on log-log axes, every dataset a line, so real and synthetic data can be laid side
by side.

``run`` stores each dataset's characteristics beside its records
(``<results>/datasets/<fingerprint>.json``, ``save``), and the leaderboard lists those of
the datasets its records were computed on (``leaderboard_section``): from stored files only,
like every table.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.data.characteristics import QUANTILES, ccdf, characteristics
from bench.data.model import Dataset
from bench.execution import store

#: rows of the characteristics table: (key, label)
ROWS = (
    ("users", "users"), ("items", "items"), ("ratings", "ratings"), ("density", "density"),
    ("gini_items", "Gini of item popularity"), ("gini_users", "Gini of user activity"),
    ("mean_rating", "mean rating"), ("value_kind", "values"),
)


def _cell(key: str, value) -> str:
    if value is None:
        return "-"
    if key == "density":
        return f"{100 * value:.3f}%"
    if key in ("gini_items", "gini_users"):
        return f"{value:.3f}"
    if key == "mean_rating":
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)



def _quantiles(values: list[float]) -> str:
    return " / ".join(f"{v:g}" if v < 100 else f"{v:,.0f}" for v in values)



def table(described: list[tuple[str, dict]]) -> list[str]:
    """Markdown: one row per characteristic, one column per dataset."""
    head = ["characteristic", *[f"`{name}`" for name, _ in described]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(key, c.get(key)) for _, c in described)
                     + " |")
    q = "/".join(str(x) for x in QUANTILES)
    for key, label in (("user_quantiles", "ratings per user"),
                       ("item_quantiles", "ratings per item")):
        lines.append(f"| {label}, percentiles {q} | "
                     + " | ".join(_quantiles(c[key]) for _, c in described) + " |")
    return lines



def figure(datasets: list[tuple[str, Dataset]], path: Path) -> Path:
    """Log-log CCDF of user activity and item popularity, one line per dataset."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(fig)
    panels = fig.subplots(1, 2)
    for ax, what, title in ((panels[0], "user", "user activity"),
                            (panels[1], "item", "item popularity")):
        for name, ds in datasets:
            counts = ds.ratings.user_counts() if what == "user" else ds.ratings.item_counts()
            x, y = ccdf(counts)
            ax.step(x, y, where="post", label=name if len(name) <= 60 else name[:57] + "...")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"ratings per {what}")
        ax.set_ylabel(f"share of {what}s with at least x")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    panels[1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path



def save(results: Path, name: str, ds: Dataset) -> Path:
    """Store ``ds``'s characteristics under ``<results>/datasets/`` (by fingerprint)."""
    fingerprint = ds.fingerprint()[:16]
    path = Path(results) / "datasets" / f"{fingerprint}.json"
    doc = {"dataset": name, "fingerprint": fingerprint, "characteristics": characteristics(ds)}
    text = json.dumps(doc, indent=1, sort_keys=True).encode()
    store.write_atomic(path, lambda fh: fh.write(text))
    return path



def stored(results_dirs: list[Path], records: list[dict]) -> list[tuple[str, dict]]:
    """(dataset, characteristics) stored for the datasets and fingerprints of ``records``."""
    wanted = sorted({(r.get("dataset"), r.get("dataset_fingerprint")) for r in records
                     if r.get("dataset_fingerprint")})
    out = []
    for name, fingerprint in wanted:
        for d in results_dirs:
            path = Path(d) / "datasets" / f"{fingerprint}.json"
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if doc.get("dataset") == name and isinstance(doc.get("characteristics"), dict):
                out.append((name, doc["characteristics"]))
                break
    return out



def leaderboard_section(records: list[dict], results_dirs: list[Path]) -> str:
    """The leaderboard's "Datasets" section (empty when nothing is stored)."""
    described = stored(results_dirs, records)
    if not described:
        return ""
    return "\n".join([
        "## Datasets",
        "",
        "Characteristics of the data the tables above were computed on, stored by `run` "
        "(`python -m bench describe DATASET ...` prints them and draws the degree "
        "distributions).",
        "",
        *table(described),
        "",
    ])



def describe(names: list[str], figure_path: Path | None) -> tuple[str, Path | None]:
    """Markdown characteristics of the named datasets and, with ``figure_path``, the
    degree-distribution figure."""
    from bench.data import datasets

    loaded = [(name, datasets.load(name)) for name in names]
    text = "\n".join(table([(name, characteristics(ds)) for name, ds in loaded]))
    drawn = figure(loaded, figure_path) if figure_path is not None else None
    return text, drawn
