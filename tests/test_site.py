"""The results API (``bench.results.load``) and the static site (``bench report --html``),
the site loaded from disk in headless Chromium (Debian's package) through Playwright."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench import results
from bench.execution import store
from bench.reporting import report

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baseline"
PUBLISHED = ROOT / "results" / "published" / "runs" / "all.jsonl"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    """The CI baseline (12 records, 1 table) and, verbatim from the published records, the
    tables of three other protocols: 4 tables over 3 splits and 3 metric definitions, with
    rows that read side information."""
    return [BASELINE, published_subset(tmp_path_factory, "subset", lambda r: (
        (r["group"] == "quick" and r["split_label"].endswith("stratified 75/25"))
        or (r["group"] == "coldstart" and r["split_label"] == "cold items 10%")))]


def published_subset(tmp_path_factory, name: str, keep) -> Path:
    """The published test records ``keep`` selects, lines copied verbatim (checksums hold)."""
    path = tmp_path_factory.mktemp("published") / f"{name}.jsonl"
    lines = [line for line in PUBLISHED.read_text().splitlines()
             if json.loads(line)["stage"] == "test" and keep(json.loads(line))]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def site(sources, tmp_path_factory) -> Path:
    """Compared against the published quick random 80/20 records: the CI baseline's
    trials match 12 of them (same numbers), the others are missing: FAIL."""
    quick = published_subset(tmp_path_factory, "quick", lambda r: (
        r["group"] == "quick" and r["split_label"] == "random 80/20"))
    out = tmp_path_factory.mktemp("site") / "site"
    res = subprocess.run(
        [sys.executable, "-m", "bench", "report", "--html", "--output", out,
         "--compare", quick, *(a for s in sources for a in ("--results", s))],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert f"site: {out / 'index.html'}" in res.stderr
    return out


def test_load_gives_one_row_per_record_with_flat_columns():
    frame = results.load(BASELINE)
    recs = store.load([BASELINE])
    assert len(frame) == len(recs) == 12
    by_id = frame.set_index("trial_id")
    for rec in recs:
        row = by_id.loc[rec["trial_id"]]
        for metric, value in rec["metrics"].items():
            assert row[metric] == (pytest.approx(value) if value is not None else None) or (
                value is None and math.isnan(row[metric]))  # not produced: NaN
        for name, value in rec["params"].items():
            assert row[f"params.{name}"] == value or value is None
        assert math.isnan(row["rmse"]) == ("rmse" not in rec["metrics"])
        assert row["split.method"] == "random" and row["env.cpu"] == rec["env"]["cpu"]
        assert row["interval.ndcg@10"] == rec["intervals"]["ndcg@10"]
    assert list(frame.columns[:12]) == list(results.FRONT)
    assert not frame["stale"].any()


def test_load_per_user_without_files_is_empty_with_a_warning(caplog, tmp_path):
    # published and baseline records ship without their per-user files (ignored by git)
    (tmp_path / "runs").mkdir()
    shutil.copy(BASELINE / "runs" / "ci.jsonl", tmp_path / "runs" / "ci.jsonl")
    frame = results.load(tmp_path, per_user=True)
    assert frame.empty and {"trial_id", "adapter", "user"} <= set(frame.columns)
    assert "without a readable per-user file" in caplog.text


def test_site_has_every_leaderboard_row_and_a_page_per_row(site, sources):
    recs = [r for r in store.load(sources) if r.get("stage", "test") == "test"]
    markdown = report.leaderboard_text(recs, [str(s) for s in sources], "cmd")
    md_rows = [line for line in markdown.splitlines() if line.startswith("| `")]
    index = (site / "index.html").read_text()
    assert index.count('<tr data-library="') == len(md_rows) > 20
    pages = set(re.findall(r'href="(models/[0-9a-f]{12}\.html)"', index))
    assert len(pages) == len(md_rows) and all((site / p).is_file() for p in pages)
    assert not re.search(r'(src|href)="(https?:)?//', index)  # nothing fetched from a network
    for name in ("figures.html", "compare.html", "static/site.js", "static/site.css"):
        assert (site / name).is_file()
    assert list((site / "plots").glob("*.png"))


def test_report_html_bad_input_is_one_line_and_exit_2(tmp_path):
    def report(*args):
        return subprocess.run([sys.executable, "-m", "bench", "report", *map(str, args)],
                              capture_output=True, text=True, timeout=120)

    res = report("--results", BASELINE, "--compare", BASELINE)
    assert res.returncode == 2 and "use it with --html" in res.stderr
    res = report("--html", "--results", tmp_path / "nothing")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no results" in res.stderr
    # never writes over a directory that is not a former site (e.g. published figures)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "figure.png").write_bytes(b"png")
    res = report("--html", "--results", BASELINE, "--output", tmp_path, "--no-plots")
    assert res.returncode == 2 and "holds no recbench site" in res.stderr
    assert (tmp_path / "plots" / "figure.png").read_bytes() == b"png"


def _visible(page, selector: str) -> list:
    return page.eval_on_selector_all(
        selector, "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset)")


#: how long a browser step may take before it fails (ms): generous, see below
LOADED_HOST_MS = 300_000


def test_site_in_headless_chromium(site):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    errors: list[str] = []
    requests: list[str] = []
    profile = tempfile.mkdtemp(prefix="recbench-chromium-")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                viewport={"width": 1400, "height": 1000}, timeout=LOADED_HOST_MS,
            )
            # Playwright's 30 s defaults fail on a loaded 2-core host; waits end as soon as
            # their condition holds, so a long bound costs nothing on a quiet one.
            browser.set_default_timeout(LOADED_HOST_MS)
            browser.set_default_navigation_timeout(LOADED_HOST_MS)
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((site / "index.html").as_uri())
            count = page.locator("#filter-count")
            assert count.text_content() == "4 of 4 tables"

            # sorting: the ci table by NDCG@10, ascending then descending, blanks last
            board = page.locator('section.board[data-suite="ci"]')
            head = board.locator("thead th").filter(has_text="NDCG@10")
            column = board.locator("thead th").all_text_contents().index("NDCG@10")

            def ndcg() -> list[float]:
                cells = board.locator(f"tbody tr td:nth-child({column + 1})")
                return [float(v) for v in cells.evaluate_all(
                    "tds => tds.map(td => td.dataset.sort)") if re.match(r"-?\d", v)]

            head.locator("button").click()
            assert head.get_attribute("aria-sort") == "ascending"
            assert ndcg() == sorted(ndcg()) and len(ndcg()) == 12
            head.locator("button").click()
            assert head.get_attribute("aria-sort") == "descending"
            assert ndcg() == sorted(ndcg(), reverse=True)
            # RMSE: rating models in order, ranking-only models (blank cells) after them
            rmse_column = board.locator("thead th").all_text_contents().index("RMSE")
            board.locator("thead th").nth(rmse_column).locator("button").click()
            cells = board.locator(f"tbody tr td:nth-child({rmse_column + 1})").evaluate_all(
                "tds => tds.map(td => td.dataset.sort)")
            numbers = [float(v) for v in cells if v]
            assert numbers == sorted(numbers) and 0 < len(numbers) < len(cells)
            assert cells[len(numbers):] == [""] * (len(cells) - len(numbers))
            model = board.locator("thead th").first
            model.locator("button").click()
            names = board.locator("tbody tr td:first-child").all_text_contents()
            assert names == sorted(names, key=str.lower)

            # filtering: by split, metric definition, library and side information
            page.select_option("#filter-split", "cold items 10%")
            assert count.text_content() == "2 of 4 tables"
            page.select_option("#filter-metric", "relevant = test rating >= 4 · ranked "
                               "among cold items only")
            assert count.text_content() == "1 of 4 tables"
            page.locator("#filter-reset").click()
            # a locator assertion, not wait_for_function("..."): Playwright evaluates a string
            # predicate with eval, which the site's Content-Security-Policy (no 'unsafe-eval')
            # refuses whenever the first check is not already true
            sync_api.expect(page.locator("#filter-count")).to_have_text("4 of 4 tables")
            page.select_option("#filter-library", "implicit")
            rows = _visible(page, "section.board tbody tr")
            assert rows and {r["library"] for r in rows} == {"implicit"}
            page.select_option("#filter-library", "")
            page.select_option("#filter-side", "side")
            rows = _visible(page, "section.board tbody tr")
            assert rows and {r["side"] for r in rows} == {"side"}
            side_models = page.locator("section.board tbody tr:visible td:first-child")
            assert all("◆" in t for t in side_models.all_text_contents())
            assert "location.hash" and "side=side" in page.url  # linkable filters
            page.select_option("#filter-side", "cf")
            assert all(r["side"] == "cf" for r in _visible(page, "section.board tbody tr"))

            # a model page opens from its row
            link = page.locator("section.board tbody tr:visible a.model").first
            adapter = link.text_content().split()[0]
            link.click()
            page.wait_for_url(re.compile(r"/models/[0-9a-f]{12}\.html$"))
            assert adapter in page.locator("#model-title").text_content()
            command = page.locator("pre.command").text_content()
            assert command.startswith("python -m bench run --suite ") and adapter in command
            assert page.get_by_role("heading", name="Per-fold values").is_visible()

            # figures load from disk; the compare page says what `bench compare` says
            page.goto((site / "figures.html").as_uri())
            images = page.locator(".gallery img")
            assert images.count() > 0
            images.first.scroll_into_view_if_needed()
            page.wait_for_function(
                "() => { const i = document.querySelector('.gallery img');"
                " return i.complete && i.naturalWidth > 0; }")
            page.goto((site / "compare.html").as_uri())
            assert "FAIL" in page.locator(".verdict").text_content()
            assert "Missing from current" in page.locator("main").text_content()
            assert page.locator(".note li").count() > 0
            browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests
