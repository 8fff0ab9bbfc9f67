"""The distribution a user installs (issue 26): a wheel built from the tree carries the
licence, the typing marker and the project's metadata, one version everywhere, no
dependency that nothing imports, and a changelog for that version."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import bench

ROOT = Path(__file__).parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "bench", "adapters", "datasets")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """A wheel built from a copy of the tree (the checkout stays clean), as pip builds it
    (in an isolated environment with the build-system requirements, as `pip install`)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
        else:
            shutil.copy(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr
    (built,) = out.glob("recbench-*.whl")
    with zipfile.ZipFile(built) as zf:
        yield zf


def metadata(wheel: zipfile.ZipFile):
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return Parser().parsestr(wheel.read(name).decode())


def test_the_wheel_has_the_licence_and_the_typing_markers(wheel):
    names = wheel.namelist()
    licence = next(n for n in names if ".dist-info/" in n and n.endswith("/LICENSE"))
    text = wheel.read(licence).decode()
    assert text.startswith("MIT License") and "Copyright (c) 2026 recbench developers" in text
    assert "bench/py.typed" in names and "recbench_adapters/py.typed" in names
    assert "bench/execution/suites/smoke.toml" in names  # package data beside the marker


def test_the_metadata_names_version_licence_urls_and_classifiers(wheel):
    meta = metadata(wheel)
    assert meta["Version"] == bench.__version__
    assert "MIT" in (meta["License"], meta["License-Expression"])
    classifiers = meta.get_all("Classifier")
    assert "License :: OSI Approved :: MIT License" in classifiers
    assert "Typing :: Typed" in classifiers and "Programming Language :: Python :: 3.11" in \
        classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    requires = meta.get_all("Requires-Dist")
    assert not any(r.startswith("pooch") for r in requires)  # downloads use urllib


def test_no_declared_dependency_is_pooch_and_nothing_imports_it():
    assert "pooch" not in (ROOT / "pyproject.toml").read_text()
    for path in [*ROOT.glob("bench/**/*.py"), *ROOT.glob("adapters/*.py")]:
        assert not re.search(r"^\s*(import|from)\s+pooch\b", path.read_text(), re.M), path


def test_the_changelog_keeps_a_changelog_and_has_this_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog")
    assert "https://keepachangelog.com/en/1.1.0/" in text
    assert "## [Unreleased]" in text
    match = re.search(rf"^## \[{re.escape(bench.__version__)}\] - (\d{{4}}-\d{{2}}-\d{{2}})$",
                      text, re.M)
    assert match, f"no section for version {bench.__version__}"
    sections = re.findall(r"^### (\w+)$", text, re.M)
    assert sections and set(sections) <= {"Added", "Changed", "Deprecated", "Removed",
                                          "Fixed", "Security"}
