"""Synthetic data in the real releases' layouts goes through each release's own parser."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cli import main
from bench.data import datasets, formats

SPEC = "synthetic:users=300,items=120,ratings=5000,seed=1"


@pytest.fixture(scope="module")
def synthetic():
    return datasets.load(SPEC)


def _rows(ds, user_ids, item_ids, day_resolution: bool):
    r = ds.ratings
    t = r.timestamps // 86_400 if day_resolution else r.timestamps
    rows = np.stack([user_ids[r.users].astype(np.int64), item_ids[r.items].astype(np.int64),
                     r.ratings.astype(np.int64), t.astype(np.int64)], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("layout", sorted(formats.WRITERS))
def test_written_layout_loads_through_the_release_parser_with_every_row(
    layout, synthetic, tmp_path, monkeypatch
):
    name, toml = formats.write(synthetic, layout, tmp_path / layout)
    monkeypatch.setenv(datasets.ENV_REGISTRY_PATH, str(toml.parent))
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "cache"))
    entry = datasets.get_entry(name)
    assert entry.format == datasets.get_entry(formats.LAYOUTS[layout]).format
    got = datasets.load(name)
    assert "expect_mismatch" not in got.meta
    rated = synthetic.ratings.item_counts() > 0  # synthetic: may leave an item unrated,
    # and a release's parser codes the items of its ratings file only
    assert (len(got.ratings), got.n_users, got.n_items) == (5000, 300, int(rated.sum()))
    netflix = layout == "netflix-prize"
    users = formats.netflix_customer_ids(300) if netflix else np.arange(1, 301)
    want = _rows(synthetic, users, np.arange(1, 121), day_resolution=netflix)
    have = _rows(got, got.user_ids.astype(np.int64), got.item_ids.astype(np.int64),
                 day_resolution=netflix)
    np.testing.assert_array_equal(have, want)
    if layout != "netflix-prize":  # genres travel in movies.dat / movies.csv
        assert got.item_features is not None
        assert got.item_features.matrix.nnz == synthetic.item_features.matrix[rated].nnz


def test_write_layout_command(tmp_path, capsys):
    assert main(["write-layout", "ml-1m", "--data", SPEC, "--out", str(tmp_path)]) == 0
    name = capsys.readouterr().out.strip()
    assert (tmp_path / f"{name}.toml").is_file()
    assert (tmp_path / "ratings.dat").read_text().splitlines()[0].count("::") == 3
    assert main(["write-layout", "ml-2m", "--data", SPEC, "--out", str(tmp_path)]) == 2
    assert "unknown layout 'ml-2m'" in capsys.readouterr().err
