"""Hostile input and environment faults, second round (issue 23): script injection in the
site, silent data loss, wrong results accepted, hangs, tracebacks.

Every case runs the real CLI in a subprocess on real files; the faults are real (a full
tmpfs, a read-only mount, truncated and flipped compressed files, killed processes).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_integrity import flip_byte, mount_tmpfs, one_line, umount
from test_runner import PLUGINS, bench, records, write_suite

from bench import store


def base_csv(path: Path, rating=lambda u, i: (u * 7 + i) % 5 + 1) -> Path:
    """The issue's base.csv: 30 users, 40 items, 600 rows."""
    rows = [(u, i) for u in range(30) for i in range(40) if (u + i) % 2 == 0]
    path.write_text("user,item,rating,timestamp\n" + "".join(
        f"{u},{i},{rating(u, i)},{1000 + k}\n" for k, (u, i) in enumerate(rows)))
    return path


def site_files(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*.html")}


# ------------------------------------------------------------------ 1. script injection

UNSAFE_HREF = re.compile(r"""href\s*=\s*["']?\s*(?!https?://)[a-z][a-z0-9+.\-]*:""", re.I)


def assert_no_injection(out: Path) -> None:
    pages = site_files(out)
    assert pages
    for name, text in pages.items():
        assert not UNSAFE_HREF.search(text), (name, UNSAFE_HREF.search(text))
        assert '"/onmouseover="' not in text and "<a href=\"x\"" not in text, name
        assert "Content-Security-Policy" in text and "script-src 'self'" in text, name


def test_a_markdown_link_in_a_csv_path_does_not_become_a_javascript_link(tmp_path):
    csv = base_csv(tmp_path / "[x](javascript:window.onerror=alert;throw+1).csv")
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean", "baseline.Popularity"])
    results = tmp_path / "r"
    common = ("--suite", suite, "--results", results, "--dataset", f"csv:{csv}", "--no-plots")
    assert bench("run", *common, "--adapter", "fault.Mean").returncode == 0
    base_csv(csv, rating=lambda u, i: (u + i) % 5 + 1)  # edited: the first record is stale
    res = bench("run", *common, "--adapter", "baseline.Popularity")
    assert res.returncode == 0, res.stderr
    res = bench("report", "--html", "--results", results, "--no-plots")
    assert res.returncode == 0, res.stderr
    index = (results / "site" / "index.html").read_text()
    assert "Left out: 1 record(s)" in index and "javascript:window.onerror" in index
    assert_no_injection(results / "site")


def test_hostile_names_in_checksummed_records_stay_text(tmp_path):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    assert bench("run", "--suite", suite, "--results", tmp_path / "r").returncode == 0
    (rec,) = records(tmp_path / "r", "s")
    rec.pop("checksum")
    rec["adapter"] = 'fault.[y](x"/onmouseover="alert(1)")'
    rec["params"] = {"sleep": "[p](javascript:alert(2))"}
    rec["env"]["cpu"] = "[c](JavaScript:alert(3)) [ok](https://example.org/a)"
    hostile = tmp_path / "h" / "runs" / "h.jsonl"
    store.append(hostile, rec)  # a valid checksum
    res = bench("report", "--html", "--results", tmp_path / "h", "--no-plots")
    assert res.returncode == 0, res.stderr
    pages = site_files(tmp_path / "h" / "site")
    assert_no_injection(tmp_path / "h" / "site")
    text = "\n".join(pages.values())
    assert "onmouseover=&quot;" in text  # shown, as text
    assert '<a href="https://example.org/a">ok</a>' in text  # http(s) links still work
