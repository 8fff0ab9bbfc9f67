"""The committed leaderboard is rebuilt from the committed records, byte for byte, on a
checkout without the optional extras (torch, pyspark, dask): every mark comes from what is
published (records and the compact per-user packs, ``bench.reporting.peruser_pack``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.execution import store
from bench.reporting import peruser_pack

ROOT = Path(__file__).parent.parent
#: the optional extras' libraries, made unimportable in the report's process
EXTRAS = ("torch", "pyspark", "dask", "distributed", "jinja2")


def report(results: Path, output: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    code = (  # an import of an extra fails as on a checkout without it
        "import importlib.abc, sys\n"
        "class NotInstalled(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        f"        if name.split('.')[0] in {EXTRAS!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
        "from bench.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "report", "--results", str(results), "--output",
         str(output), *extra],
        cwd=cwd, capture_output=True, text=True, timeout=1200,
    )


def published_by_current_code(published: Path) -> bool:
    """Whether every published record has the fields of schema_minor 1 (the records and
    per-user packs this test rebuilds from); earlier publications lack both."""
    records = [r for run in store.runs_dir(published).glob("*.jsonl") for r in store.read(run)]
    return bool(records) and all(r.get("schema_minor", 0) >= 1 for r in records)


def test_published_leaderboard_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    published = ROOT / "results" / "published"
    if not published_by_current_code(published):
        pytest.skip("results/published predates schema_minor 1 and per-user packs: "
                    "re-publish (docs/reproducibility.md, Publishing results) to make the "
                    "leaderboard rebuildable")
    packs = sorted(store.runs_dir(published).glob(f"*{peruser_pack.SUFFIX}"))
    assert packs, ("results/published has no per-user pack: after publishing, run "
                   "`python -m bench.reporting.peruser_pack --results results/published`")
    out = tmp_path / "LEADERBOARD.md"
    res = report(Path("results/published"), out, ROOT)
    assert res.returncode == 0, res.stderr
    committed = (ROOT / "results" / "LEADERBOARD.md").read_text(encoding="utf-8")
    rebuilt = out.read_text(encoding="utf-8")
    if rebuilt != committed:
        import difflib

        diff = list(difflib.unified_diff(committed.splitlines(), rebuilt.splitlines(),
                                         "committed", "rebuilt", lineterm="", n=0))
        raise AssertionError(f"{sum(1 for d in diff if d[:1] in '+-') - 2} lines differ:\n"
                             + "\n".join(diff[:40]))


def test_a_pack_gives_the_report_what_the_per_user_files_gave(tmp_path: Path) -> None:
    # a small run: its report with the per-user files, then with only the pack
    suite = tmp_path / "tiny.toml"
    suite.write_text(
        'description = "tiny"\nthreads = 1\n[[run]]\n'
        'datasets = ["synthetic:users=150,items=90,ratings=3000,seed=6"]\n'
        'splits = [{ method = "random", test_fraction = 0.2 }]\n'
        'adapters = ["baseline.Popularity", "baseline.Random", "recbench.EASE"]\n'
        'metrics = { ks = [10], threshold = "none" }\nseeds = [0, 1]\n'
    )
    results = tmp_path / "r"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results",
         str(results), "--no-report"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    with_files = tmp_path / "with_files.md"
    assert report(results, with_files, tmp_path, "--no-plots").returncode == 0
    assert "†" in with_files.read_text(encoding="utf-8")

    assert peruser_pack.main(["--results", str(results)]) == 0
    pack = peruser_pack.pack_path(results, "tiny")
    with np.load(pack) as data:
        assert all(n.endswith(("/user", "/ndcg@10")) for n in data.files)
    shutil.rmtree(results / "runs" / "peruser")
    only_pack = tmp_path / "only_pack.md"
    assert report(results, only_pack, tmp_path, "--no-plots").returncode == 0
    assert only_pack.read_text(encoding="utf-8") == with_files.read_text(encoding="utf-8")

    # a damaged pack is not used: the marks vanish instead of being wrong
    blob = bytearray(pack.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    pack.write_bytes(bytes(blob))
    damaged = tmp_path / "damaged.md"
    res = report(results, damaged, tmp_path, "--no-plots")
    assert res.returncode == 0 and "does not match its checksum" in res.stderr
    assert "†" not in damaged.read_text(encoding="utf-8").split("## Suite")[1]
