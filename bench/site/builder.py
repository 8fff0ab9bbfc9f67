"""The static results site: ``python -m bench report --html`` (see ``build``).

Built from stored records only.  The leaderboard's tables are the markdown leaderboard's
own (``bench.reporting.leaderboard.render_table``), read back cell by cell, so the site and
``LEADERBOARD.md`` cannot disagree; rows are matched to their records by the same
``row_key`` / ``row_labels`` the leaderboard uses, which gives each row a model page.
Figures are the leaderboard's PNGs, drawn into the site directory.  Templates (Jinja2) and
the small sort / filter script live beside this module; nothing is fetched at view time.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import results
from bench.errors import UserError
from bench.execution import record, store
from bench.reporting import compare, leaderboard, report, significance
from bench.reporting import text as wording

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
METRIC_FIELDS = ("fit_seconds", "predict_seconds", "recommend_seconds", "peak_rss_mb")


# ------------------------------------------------------------------ markdown read back

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), lambda m: safe_link(m.group(1), m.group(2))),
]
#: a link's target may be relative or http(s); any other scheme (javascript:, data:, ...)
#: leaves the link text alone
_SAFE_URL = re.compile(r"(?:https?://|[^:]*(?:[/?#]|$))", re.IGNORECASE)
_NUMBER = re.compile(r"^[*\s]*(-?\d+(?:\.\d+)?)")


def inline_html(text: str) -> str:
    """The leaderboard's inline markdown (code, bold, italic, links) as escaped HTML."""
    out = html.escape(text.strip(), quote=True)  # quotes too: nothing leaves an attribute
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def safe_link(label: str, url: str) -> str:
    """``<a>`` for a relative or http(s) target (already escaped); else the label alone."""
    if not _SAFE_URL.match(html.unescape(url)):
        return f"{label} ({url})"
    return f'<a href="{url}">{label}</a>'


@dataclass
class Cell:
    html: str
    sort: float | str  # a number sorts numerically; text (or "") after the numbers
    best: str = ""  # "best" (bold: best of the column) or "cf-best" (italic)
    text: str = ""  # the markdown cell as written


@dataclass
class Table:
    head: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)  # paragraphs (HTML) under the table


def parse_cell(text: str) -> Cell:
    text = text.strip()
    best = "best" if text.startswith("**") else "cf-best" if text.startswith("*") else ""
    number = _NUMBER.match(text)
    folds = re.fullmatch(r"(\d+)/\d+", text)
    sort: float | str = (
        float(number.group(1)) if number else float(folds.group(1)) if folds
        else re.sub(r"[`*]", "", text).strip().lower()
    )
    return Cell(inline_html(text), sort, best, text)


def parse_markdown_table(lines: list[str]) -> Table:
    """A markdown table (``| a | b |`` lines, a ``|---|`` rule) and the text around it."""
    head: list[str] = []
    rows: list[list[Cell]] = []
    notes: list[str] = []
    items: list[str] = []  # consecutive "- " lines: one list
    for block in lines:
        for line in block.split("\n"):
            if not line.strip():
                continue
            if items and not line.startswith("- "):
                notes.append("<ul>" + "".join(items) + "</ul>")
                items = []
            if line.startswith("|") and line.rstrip().endswith("|"):
                cells = [c.strip() for c in line.strip()[1:-1].split("|")]
                if not head:
                    head = [re.sub(r"[`*]", "", c) for c in cells]
                elif not set(line.replace("|", "").strip()) <= set("-: "):
                    rows.append([parse_cell(c) for c in cells])
            elif line.startswith("- "):
                items.append(f"<li>{inline_html(line[2:])}</li>")
            else:
                notes.append(inline_html(line))
    if items:
        notes.append("<ul>" + "".join(items) + "</ul>")
    return Table(head, rows, notes)


# ------------------------------------------------------------------ site model


@dataclass
class Row:
    key: tuple
    records: list[dict]
    cells: list[Cell]
    page: str  # models/<id>.html
    adapter: str
    library: str
    side: bool


@dataclass
class Section:
    anchor: str
    group: str
    title: str
    dataset: str
    split: str
    metric: str  # the metric definition: relevance rule (+ candidates, curve)
    note: str | None
    table: Table
    rows: list[Row]
    figures: list[str]


def model_cell_key(text: str) -> tuple[str, str]:
    """(adapter, cold path as shown) from a leaderboard model cell: ``\\`a.B\\` (fold-in) ◆``."""
    m = re.match(r"`([^`]+)`(?: \(([^)]*)\))?", text.strip())
    if not m:
        return text.strip(), ""
    return m.group(1), m.group(2) or ""


def metric_definition(options: dict) -> str:
    text = wording.relevance_text(options)
    if options.get("candidates") == "cold":
        text += " · ranked among cold items only"
    if options.get("curve"):
        text += f" · {options['curve']} curve"
    return text


def page_id(table: tuple, row: tuple) -> str:
    return hashlib.sha256(json.dumps([table, row], default=str).encode()).hexdigest()[:12]


def build_sections(
    records: list[dict], marks: leaderboard.Marks,
    figure_slug: Callable[[dict], str] | None, figures: list[str],
) -> list[Section]:
    tables: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("stage", "test") != "validation":  # tuning candidates are not tabled
            tables[record.table_key(r)].append(r)
    # the leaderboard's order: quick first, ablations last
    groups = sorted({k[0] for k in tables}, key=lambda g: (g != "quick", g.startswith("abl"), g))
    sections = []
    for group in groups:
        for key in sorted((k for k in tables if k[0] == group), key=leaderboard.table_order):
            recs = tables[key]
            first = recs[0]
            options = first.get("metric_options", {})
            table = parse_markdown_table(leaderboard.render_table(recs, marks))
            rows = match_rows(key, recs, table)
            slug = figure_slug(first) if figure_slug else None
            mine = [f for f in figures if slug and Path(f).name.startswith(slug + "_")]
            sections.append(Section(
                anchor="t-" + page_id(key, ())[:8],
                group=group,
                title=f"{first['dataset']} · {first.get('split_label', '')} "
                      f"(seed {first['split'].get('seed')})",
                dataset=first["dataset"],
                split=first.get("split_label", ""),
                metric=metric_definition(options),
                note=leaderboard.protocol_note(first["split"], options),
                table=table,
                rows=rows,
                figures=mine,
            ))
    return sections


def match_rows(table_key: tuple, recs: list[dict], table: Table) -> list[Row]:
    """The records behind each rendered row (by the leaderboard's own row keys and labels)."""
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for r in recs:
        if r["status"] == "ok":
            by_key[record.row_key(r)].append(r)
    labels = leaderboard.labels_for(by_key)
    lookup = {(k[0], (k[4] or "").replace("_", "-"), labels[k]): k for k in by_key}
    rows = []
    for cells in table.rows:
        adapter, cold = model_cell_key(cells[0].text)
        label = cells[1].text
        key = lookup.get((adapter, cold, label))
        if key is None:
            raise RuntimeError(f"leaderboard row {adapter} / {label} matches no records")
        side = bool(leaderboard.record_flag(by_key[key], "side_information",
                                            "uses_side_features"))
        rows.append(Row(
            key=key,
            records=sorted(by_key[key], key=lambda r: (str(r.get("seed")), r["fold"])),
            cells=cells,
            page=f"models/{page_id(table_key, key)}.html",
            adapter=adapter,
            library=adapter.split(".")[0],
            side=side,
        ))
    return rows


# ------------------------------------------------------------------ model pages


def fold_table(recs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Per-record values of a row: seed, fold, every metric, times, memory, status."""
    metrics = leaderboard.columns_for(recs)
    head = ["seed", "fold", *map(wording.header_name, metrics),
            "fit s", "predict s", "rank s", "peak RSS MB", "threads", "status"]
    body = []
    for r in recs:
        values = [(r.get("metrics") or {}).get(m) for m in metrics]
        body.append([
            str(r.get("seed")), str(r["fold"]),
            *("" if v is None else f"{v:.4f}" for v in values),
            *("" if r.get(t) is None else f"{r[t]:.3f}" for t in METRIC_FIELDS[:3]),
            "" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:.0f}",
            str(r.get("threads")), r["status"],
        ])
    return head, body


def param_table(recs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Parameters of a row: one column when every record used the same, else per fold."""
    names = sorted({p for r in recs for p in r.get("params") or {}})
    settings = [json.dumps(r.get("params"), sort_keys=True) for r in recs]
    if len(set(settings)) <= 1:
        params = recs[0].get("params") or {}
        return ["parameter", "value"], [[p, json.dumps(params.get(p))] for p in names]
    head = ["parameter", *(f"seed {r.get('seed')} fold {r['fold']}" for r in recs)]
    return head, [[p, *(json.dumps((r.get("params") or {}).get(p)) for r in recs)]
                  for p in names]


def band_table(recs: list[dict]) -> tuple[list[str], list[list[str]]] | None:
    """Metrics by band of users' train-set size, averaged over the records that share the
    first record's band edges (folds can band users slightly differently)."""
    banded = [r for r in recs if r.get("bands")]
    if not banded:
        return None
    edges = banded[0]["bands"]["edges"]
    same = [r for r in banded if r["bands"]["edges"] == edges]
    metrics = [m for m in banded[0]["bands"] if m not in ("edges", "n_users")]
    head = ["train ratings", "users", *map(wording.header_name, metrics)]
    body = []
    for i in range(len(edges) - 1):
        high = edges[i + 1] if i == len(edges) - 2 else edges[i + 1] - 1
        values = []
        for m in metrics:
            vals = [r["bands"][m][i] for r in same
                    if i < len(r["bands"].get(m) or []) and r["bands"][m][i] is not None]
            values.append(f"{sum(vals) / len(vals):.4f}" if vals else "")
        users = banded[0]["bands"].get("n_users") or []
        body.append([f"{edges[i]}–{high}", str(users[i]) if i < len(users) else "", *values])
    return head, body


def environment(recs: list[dict]) -> dict:
    envs = [r["env"] for r in recs if r.get("env")]
    if not envs:
        return {}
    env = envs[-1]
    versions: dict[str, str] = {}
    for e in envs:
        versions.update({k: v for k, v in (e.get("versions") or {}).items() if v})
    return {
        "hardware": f"{env.get('cpu')}, {env.get('cores')} cores, {env.get('memory_gb')} GiB",
        "platform": env.get("platform"),
        "python": env.get("python"),
        "versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
        "threads": json.dumps(env.get("threads"), sort_keys=True),
        "commits": ", ".join(sorted({str(e.get("git_commit")) for e in envs})),
        "calibration": env.get("calibration_seconds"),
    }


def reproduce(recs: list[dict]) -> str:
    """The command that recomputes a row: the suite's (``cli.reproduce_command``) narrowed
    to the row's adapter."""

    return report.reproduce_command(recs, adapters=[recs[0]["adapter"]])


# ------------------------------------------------------------------ compare view


def compare_view(baseline: list[dict], current: list[dict]) -> dict:
    """What ``bench compare BASELINE CURRENT`` prints, as a table and its notes."""
    result = compare.compare(baseline, current)
    table = parse_markdown_table(compare.render(result, only_changes=True).split("\n"))
    return {"table": table, "ok": result.ok, "regressions": len(result.regressions),
            "comparisons": len(result.rows), "failed": len(result.failed),
            "missing": len(result.missing)}


# ------------------------------------------------------------------ build


#: in every page's head: marks a directory this builder may refresh
GENERATOR = '<meta name="generator" content="recbench site">'


def check_output(out_dir: Path) -> None:
    """The site is rewritten in place only over a former site or an empty directory, so
    a mistyped --output never deletes anything else (results/plots, say)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--output {out_dir} is a file; --html writes a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        index = out_dir / "index.html"
        if not (index.is_file() and GENERATOR in index.read_text(errors="replace")[:2000]):
            raise UserError(f"--output {out_dir} is a non-empty directory that holds no "
                            "recbench site: give a new or empty directory")


def build(
    sources: list[Path],
    out_dir: Path,
    baseline: Path | None = None,
    plots: bool = True,
) -> Path:
    """Write the site for the records of ``sources`` into ``out_dir`` (created or
    refreshed); ``baseline``: results dir / .jsonl compared against them on compare.html.
    Returns the path of index.html."""
    try:
        import jinja2
        from markupsafe import Markup
    except ImportError:
        raise UserError("--html needs Jinja2: pip install -e \".[html]\"") from None
    records = results.read_records(sources)
    if not records:
        raise UserError(f"no results found in {', '.join(map(str, sources))}")
    records, stale = store.split_stale(records)
    dirs = store.results_dirs(sources)
    out_dir = Path(out_dir)
    check_output(out_dir)
    base_records = None
    if baseline is not None:
        base_records = results.read_records(baseline)
        if not base_records:
            raise UserError(f"no results found in {baseline}")
    fresh = not out_dir.exists() or not any(out_dir.iterdir())
    # stages from here on (input errors are one line, before any of them)
    log.info("site: %d records read (%s)", len(records), ", ".join(map(str, sources)))
    try:
        return _write_site(records, stale, dirs, out_dir, sources, baseline, base_records,
                           plots, jinja2, Markup)
    except BaseException:
        if fresh:  # a full disk, a read-only mount: no half-written site is left behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _write_site(records: list[dict], stale: list[dict], dirs: list[Path], out_dir: Path,
                sources: list[Path], baseline: Path | None, base_records: list[dict] | None,
                plots: bool, jinja2, Markup) -> Path:  # noqa: N803 - the class, passed in
    for sub in ("models", "plots", "static"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)  # nothing left from a former build
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    shutil.copytree(STATIC, out_dir / "static")

    figures: list[str] = []
    figure_slug = None
    started = time.monotonic()
    if plots:
        from bench.reporting.figures.common import table_slug

        log.info("site: drawing figures (matplotlib; --no-plots skips them)")
        written = report.figures(records, dirs, out_dir / "plots")
        figures = sorted(p.relative_to(out_dir).as_posix() for p in written)
        figure_slug = table_slug
        log.info("site: %d figures (%.0f s)", len(figures), time.monotonic() - started)
    started = time.monotonic()
    log.info("site: tables and significance marks of %d records (paired bootstrap per table)",
             len(records))
    sections = build_sections(records, report.marks(dirs), figure_slug, figures)
    tabled = {f for s in sections for f in s.figures}
    log.info("site: %d tables, %d rows (%.0f s)", len(sections),
             sum(len(s.rows) for s in sections), time.monotonic() - started)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = lambda text: Markup(inline_html(text))
    tested = [r for s in sections for row in s.rows for r in row.records]

    log.info("site: rendering the pages of %d rows", sum(len(s.rows) for s in sections))
    common = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "n_records": len(records),
        "sources": ", ".join(map(str, sources)),
        "has_compare": base_records is not None,
    }
    pages = {
        "index.html": env.get_template("index.html").render(
            **common, root="", sections=sections,
            suites=sorted({r.get("suite", "") for r in records}),
            command=report.reproduce_command(records),
            env_lines=[x for x in leaderboard.env_summary(records) if x],
            stale_lines=leaderboard.stale_note(stale),
            legend=[p for p in leaderboard.legend(tested) if p]
            + [significance.legend(wording.sort_column_text(
                leaderboard.sort_column(rs) for rs in record.by_table(records).values()))],
            filters={
                "suite": sorted({s.group for s in sections}),
                "dataset": sorted({s.dataset for s in sections}),
                "split": sorted({s.split for s in sections}),
                "metric": sorted({s.metric for s in sections}),
                "library": sorted({row.library for s in sections for row in s.rows}),
            },
        ),
        "figures.html": env.get_template("figures.html").render(
            **common, root="", sections=sections,
            other=[f for f in figures if f not in tabled],
        ),
    }
    if base_records is not None:
        pages["compare.html"] = env.get_template("compare.html").render(
            **common, root="", baseline=str(baseline), view=compare_view(base_records, records),
        )
    model = env.get_template("model.html")
    for section in sections:
        for row in section.rows:
            params_head, params_body = param_table(row.records)
            folds_head, folds_body = fold_table(row.records)
            pages[row.page] = model.render(
                **common, root="../", section=section, row=row,
                head=section.table.head,
                params=(params_head, params_body),
                folds=(folds_head, folds_body),
                bands=band_table(row.records),
                env=environment(row.records),
                command=reproduce(row.records),
            )
    log.info("site: writing %d pages to %s", len(pages), out_dir)
    for rel, text in pages.items():
        path = out_dir / rel
        store.write_atomic(path, lambda fh, text=text: fh.write(text.encode("utf-8")))
    return out_dir / "index.html"
