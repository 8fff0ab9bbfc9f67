"""The registry, fetching with its offline fallback, the binary cache and each parser."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.data import datasets, fetch
from bench.data.model import Dataset
from bench.data.readers.coding import build_dataset
from bench.data.readers.raw import SourceFiles
from bench.data.readers.registry import FORMATS
from bench.errors import DatasetUnavailable, UserError
from bench.execution import store

ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
REGISTERED = ["ml-100k", "ml-1m", "ml-latest-small", "ml-25m", "ml-32m", "netflix-prize"]


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset]:
    """ML-100K fetched into an empty cache: the official URL fails here, PyPI does not."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECBENCH_CACHE_DIR", str(root))
        ds = datasets.load("ml-100k")
    return root, ds


@pytest.fixture
def cache_copy(fresh_cache: tuple[Path, Dataset], tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the fetched cache, safe to corrupt."""
    root = tmp_path / "cache"
    shutil.copytree(fresh_cache[0], root)
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(root))
    return root


@pytest.fixture
def recbole_files(fresh_cache: tuple[Path, Dataset]) -> Path:
    return fresh_cache[0] / "ml-100k" / "recbole-1.2.1"


def grouplens_zip_from_recbole(recbole_dir: Path, dest: Path) -> Path:
    """Rewrite RecBole's ML-100K files in the layout of GroupLens's ml-100k.zip.

    The real zip cannot be downloaded here; this checks that the GroupLens parser reads
    that layout (u.data, u.item flags, u.user, u.genre) into the same dataset.
    """
    inter = (recbole_dir / "ml-100k.inter").read_text().splitlines()[1:]
    u_data = "\n".join(line for line in inter) + "\n"
    item_lines = []
    for line in (recbole_dir / "ml-100k.item").read_text().splitlines()[1:]:
        item_id, title, year, classes = line.split("\t")
        flags = ["1" if g in classes.split(" ") else "0" for g in ML100K_GENRES]
        item_lines.append("|".join([item_id, f"{title} ({year})", "", "", "", *flags]))
    user_lines = [
        "|".join(line.split("\t"))
        for line in (recbole_dir / "ml-100k.user").read_text().splitlines()[1:]
    ]
    genre = "".join(f"{g}|{i}\n" for i, g in enumerate(ML100K_GENRES))
    with zipfile.ZipFile(dest, "w") as zf:
        zf.writestr("ml-100k/u.data", u_data)
        zf.writestr("ml-100k/u.item", "\n".join(item_lines) + "\n")
        zf.writestr("ml-100k/u.user", "\n".join(user_lines) + "\n")
        zf.writestr("ml-100k/u.genre", genre)
    return dest


def write_entry(directory: Path, name: str, body: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.toml").write_text(body)


# -- ML-100K ----------------------------------------------------------------------------


def test_ml100k_has_the_published_shape(ml100k: Dataset) -> None:
    r = ml100k.ratings
    assert (ml100k.n_users, ml100k.n_items, len(r)) == (943, 1682, 100_000)
    assert float(r.ratings.mean()) == pytest.approx(3.52986, abs=1e-5)
    assert r.users.dtype == np.int32 and r.items.dtype == np.int32
    assert r.ratings.dtype == np.float32 and r.timestamps.dtype == np.int64
    assert ml100k.rating_scale == (1.0, 5.0)
    # codes are the sorted raw ids
    assert list(ml100k.user_ids[:3]) == [1, 2, 3] and ml100k.item_ids[-1] == 1682
    assert ml100k.item_features.names == tuple(f"genre={g}" for g in ML100K_GENRES)
    assert ml100k.item_features.matrix.shape == (1682, 19)
    uf = ml100k.user_features
    assert uf.matrix.shape[0] == 943
    assert {"gender=F", "gender=M", "occupation=technician", "age=25-34"} <= set(uf.names)
    # every user has exactly one age band, one gender and one occupation
    assert np.all(np.asarray(uf.matrix.sum(axis=1)).ravel() == 3)
    assert ml100k.item_titles[0] == "Toy Story (1995)"
    assert len(np.unique(r.pair_keys())) == len(r)


def test_ml100k_fetches_offline_through_the_pypi_fallback(fresh_cache) -> None:
    root, ds = fresh_cache
    assert ds.meta["source"] == "pypi:recbole==1.2.1"
    assert ds.meta["verified"] is True
    assert any("files.grouplens.org" in f for f in ds.meta["failed_sources"])
    assert ds.meta["duplicates_dropped"] == 0
    leftovers = [p for p in root.rglob("*") if p.name.endswith((".part", ".whl"))]
    assert leftovers == []
    assert not any(p.name.startswith(".pip-") for p in root.rglob("*"))


def test_second_load_reads_the_cache_quickly(cache_copy: Path, ml100k: Dataset) -> None:
    ds = datasets.load("ml-100k")  # how fast: benchmarks, not a wall-time assertion
    assert ds.meta["loaded_from_cache"] is True
    assert ds.fingerprint() == ml100k.fingerprint()
    assert ds.user_features.names == ml100k.user_features.names
    assert (ds.item_features.matrix != ml100k.item_features.matrix).nnz == 0
    assert list(ds.item_titles) == list(ml100k.item_titles)


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "garbage"])
def test_corrupt_cache_is_detected_and_rebuilt(cache_copy: Path, damage: str, caplog) -> None:
    npz = cache_copy / "ml-100k" / "ml-100k.npz"
    good = datasets.load("ml-100k").fingerprint()
    data = npz.read_bytes()
    if damage == "truncate":
        npz.write_bytes(data[: len(data) // 2])
    elif damage == "flip_byte":  # inside an array: the zip is readable, the checksum is not
        pos = data.index(b"\x93NUMPY") + 400
        npz.write_bytes(data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :])
    else:
        npz.write_bytes(b"not a cache")
    ds = datasets.load("ml-100k")
    assert ds.fingerprint() == good
    assert ds.meta["loaded_from_cache"] is False
    assert any(r.levelname == "WARNING" and "rebuilding" in r.getMessage() for r in caplog.records)
    assert datasets.load("ml-100k").meta["loaded_from_cache"] is True


def test_grouplens_zip_and_recbole_files_give_identical_datasets(
    recbole_files: Path, tmp_path: Path
) -> None:
    entry = datasets.get_entry("ml-100k")
    official_src, recbole_src = entry.sources
    zip_path = grouplens_zip_from_recbole(recbole_files, tmp_path / "ml-100k.zip")
    built = []
    for fmt, files in [
        ("movielens-100k", SourceFiles(zip_path, official_src["files"])),
        ("recbole-atomic", SourceFiles(recbole_files, recbole_src["files"])),
    ]:
        raw = FORMATS[fmt](files, entry.options)
        ages = entry.options["age_buckets"]["labels"]
        built.append(build_dataset(raw, "ml-100k", (1, 5), {}, ML100K_GENRES, ages))
    a, b = built
    assert a.fingerprint() == b.fingerprint()
    assert np.array_equal(a.user_ids, b.user_ids) and np.array_equal(a.item_ids, b.item_ids)
    assert a.item_features.names == b.item_features.names
    assert (a.item_features.matrix != b.item_features.matrix).nnz == 0
    assert a.user_features.names == b.user_features.names
    assert (a.user_features.matrix != b.user_features.matrix).nnz == 0


# -- fetching from a URL ------------------------------------------------------------------


def test_url_source_is_downloaded_verified_and_cached(
    recbole_files: Path, tmp_path: Path, monkeypatch
) -> None:
    archive = grouplens_zip_from_recbole(recbole_files, tmp_path / "upstream.zip")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    registry_dir = tmp_path / "registry"
    write_entry(
        registry_dir,
        "toy-100k",
        f"""
name = "toy-100k"
format = "movielens-100k"
rating_scale = [1, 5]
[options]
genres = {ML100K_GENRES!r}
[[sources]]
kind = "url"
url = "{archive.as_uri()}"
filename = "toy.zip"
checksum = "md5:{md5}"
files = {{ ratings = "ml-100k/u.data", items = "ml-100k/u.item", users = "ml-100k/u.user" }}
""".replace("'", '"').replace('"Children"s"', '"Children\'s"'),
    )
    monkeypatch.setenv("RECBENCH_DATASETS_PATH", str(registry_dir))
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "cache"))
    ds = datasets.load("toy-100k")
    assert len(ds.ratings) == 100_000 and ds.item_features.n_features == 19
    assert ds.meta["checksum"] == f"md5:{md5}" and ds.meta["verified"] is True
    assert (tmp_path / "cache" / "toy-100k" / "toy.zip").read_bytes() == archive.read_bytes()


def test_checksum_mismatch_leaves_no_file_and_one_line(tmp_path: Path, monkeypatch) -> None:
    upstream = tmp_path / "upstream.csv"
    upstream.write_text("user,item,rating\n1,1,5\n")
    registry_dir = tmp_path / "registry"
    write_entry(
        registry_dir,
        "tampered",
        f"""
name = "tampered"
format = "table"
rating_scale = [1, 5]
[[sources]]
url = "{upstream.as_uri()}"
filename = "ratings.csv"
checksum = "sha256:{"0" * 64}"
files = {{ ratings = "ratings.csv" }}
""",
    )
    monkeypatch.setenv("RECBENCH_DATASETS_PATH", str(registry_dir))
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DatasetUnavailable) as err:
        datasets.load("tampered")
    message = str(err.value)
    assert "\n" not in message and "expected 000" in message and "discarded" in message
    assert list((tmp_path / "cache").rglob("*.*")) == []


def test_unreachable_official_url_fails_fast_and_cleanly(tmp_path: Path, monkeypatch) -> None:
    registry_dir = tmp_path / "registry"
    write_entry(
        registry_dir,
        "offline",
        """
name = "offline"
format = "movielens-1m"
rating_scale = [1, 5]
manual = "ratings.zip in {cache}"
[[sources]]
url = "http://127.0.0.1:9/ratings.zip"
filename = "ratings.zip"
checksum = "md5:00000000000000000000000000000000"
files = { ratings = "ratings.dat" }
""",
    )
    monkeypatch.setenv("RECBENCH_DATASETS_PATH", str(registry_dir))
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DatasetUnavailable) as err:
        datasets.load("offline")
    message = str(err.value)
    assert "\n" not in message
    assert "127.0.0.1:9" in message and str(tmp_path / "cache" / "offline") in message
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


# -- registry ---------------------------------------------------------------------------


def test_registry_declares_every_dataset_with_provenance() -> None:
    entries = datasets.registry()
    assert set(REGISTERED) <= set(entries)
    for name in REGISTERED:
        e = entries[name]
        assert e.format in FORMATS
        assert e.licence["summary"] and e.licence["citation"]
        assert e.size_hint and e.manual
        for src in (s for s in e.sources if s.get("kind", "url") != "manual"):
            assert src.get("checksum") or src.get("checksum_url"), (name, src)
    assert entries["ml-100k"].sources[0]["checksum"] == "md5:0e33842e24a9c977be4e0107933c0723"
    assert entries["ml-1m"].sources[0]["checksum"] == "md5:c4d9eecfca2ab87c1945afe126590906"
    assert entries["ml-100k"].sources[1]["kind"] == "pypi-wheel"
    assert all(s.get("kind") == "manual" for s in entries["netflix-prize"].sources)


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(UserError) as err:
        datasets.load("ml-99k")
    message = str(err.value)
    assert "ml-99k" in message and "\n" not in message
    assert all(name in message for name in REGISTERED)


def test_list_entries_reports_state_without_downloading(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "empty"))
    by_name = {e.name: e for e in datasets.list_entries()}
    assert set(REGISTERED) <= set(by_name)
    assert by_name["ml-100k"].fetchable_offline and not by_name["ml-100k"].cached
    assert not by_name["ml-1m"].fetchable_offline
    assert by_name["netflix-prize"].status.startswith("unavailable")
    assert "ml-100k" in str(by_name["ml-100k"])
    assert not (tmp_path / "empty").exists()


def test_list_entries_sees_a_cached_dataset(cache_copy: Path) -> None:
    by_name = {e.name: e for e in datasets.list_entries()}
    assert by_name["ml-100k"].cached and by_name["ml-100k"].status == "cached"


def test_extra_registry_dir_adds_a_dataset_with_only_a_toml(tmp_path: Path, monkeypatch) -> None:
    registry_dir = tmp_path / "registry"
    write_entry(
        registry_dir,
        "my-shop",
        """
name = "my-shop"
title = "Shop ratings"
format = "table"
rating_scale = [1, 10]
manual = "ratings.tsv in {cache}"
[options]
user = "customer"
item = "product"
[[sources]]
kind = "manual"
files = { ratings = "ratings.tsv" }
""",
    )
    cache = tmp_path / "cache"
    (cache / "my-shop").mkdir(parents=True)
    (cache / "my-shop" / "ratings.tsv").write_text("customer\tproduct\tstars\nA\tx\t9\nB\tx\t2\n")
    monkeypatch.setenv("RECBENCH_DATASETS_PATH", os.pathsep.join(["", str(registry_dir)]))
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(cache))
    ds = datasets.load("my-shop")
    assert (ds.n_users, ds.n_items, len(ds.ratings)) == (2, 1, 2)
    assert ds.rating_scale == (1.0, 10.0) and list(ds.user_ids) == ["A", "B"]
    assert ds.ratings.timestamps is None
    assert ds.meta["source_kind"] == "manual"


# -- sources: one dispatch from a dataset name ------------------------------------------------


def test_each_kind_of_name_gets_its_own_source(tmp_path: Path) -> None:
    registered = datasets.source_for("ml-100k")
    assert isinstance(registered, datasets.RegisteredSource)
    assert [type(r) for r in registered.raw_sources] == [fetch.UrlSource, fetch.WheelSource]
    netflix = datasets.source_for("netflix-prize")
    assert {type(r) for r in netflix.raw_sources} == {fetch.ManualSource}

    path = tmp_path / "r.csv"
    csv = datasets.source_for(f"csv:{path}?scale=1-5&sep=tab")
    assert isinstance(csv, datasets.CsvSource)  # the file is read on load, not before
    assert (csv.path, csv.options) == (path, {"scale": "1-5", "sep": "tab"})

    spec = "synthetic:users=30,items=20,ratings=200,seed=1,implicit=1"
    synthetic = datasets.source_for(spec)
    assert isinstance(synthetic, datasets.SyntheticSource) and synthetic.implicit
    assert synthetic.params == {"n_users": "30", "n_items": "20", "n_ratings": "200", "seed": "1"}
    assert synthetic.load().value_kind == "presence"
    assert isinstance(datasets.source_for("synthetic"), datasets.SyntheticSource)


@pytest.mark.parametrize("name", ["ml-99k", "CSV:ratings.csv", "synthetic-small", ""])
def test_a_name_of_no_kind_is_the_unknown_dataset_error(name: str) -> None:
    with pytest.raises(UserError) as err:
        datasets.source_for(name)
    known = ", ".join(sorted(datasets.registry()))
    assert str(err.value) == (
        f"unknown dataset {name!r}; known datasets: {known} "
        "(or csv:PATH, synthetic:users=N,items=M,ratings=R,seed=S)"
    )


def test_unknown_source_kind_fails_in_its_turn(tmp_path: Path, monkeypatch) -> None:
    registry_dir = tmp_path / "registry"
    write_entry(
        registry_dir,
        "odd",
        """
name = "odd"
format = "table"
rating_scale = [1, 5]
[[sources]]
kind = "manual"
files = { ratings = "ratings.csv" }
[[sources]]
kind = "ftp"
files = { ratings = "ratings.csv" }
""",
    )
    monkeypatch.setenv("RECBENCH_DATASETS_PATH", str(registry_dir))
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "cache"))
    status = {e.name: e for e in datasets.list_entries()}["odd"]  # listing ignores it
    assert status.sources == ("manual", "ftp") and status.status.startswith("unavailable")
    with pytest.raises(UserError) as err:
        datasets.load("odd")
    assert str(err.value) == f"{registry_dir / 'odd.toml'}: unknown source kind 'ftp'"
    (tmp_path / "cache" / "odd").mkdir(parents=True)
    (tmp_path / "cache" / "odd" / "ratings.csv").write_text("user,item,rating\n1,1,5\n2,1,3\n")
    assert datasets.load("odd").meta["source_kind"] == "manual"  # never reached


def test_ml100k_fingerprint_is_the_one_the_baseline_records_store(ml100k: Dataset) -> None:
    """Resumption compares these: another fingerprint would redo every recorded trial."""
    baseline = Path(__file__).parent.parent / "results" / "baseline" / "runs" / "ci.jsonl"
    recorded = {r["dataset_fingerprint"] for r in store.read(baseline) if r["dataset"] == "ml-100k"}
    assert recorded == {ml100k.fingerprint()[:16]} == {"f8d7f3d691fb7197"}


# -- Netflix Prize ---------------------------------------------------------------------------


def test_netflix_without_files_is_unavailable_with_instructions(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path))
    with pytest.raises(DatasetUnavailable) as err:
        datasets.load("netflix-prize")
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "netflix-prize") in message and "combined_data" in message


def test_netflix_files_placed_by_hand_are_parsed(tmp_path: Path, monkeypatch, caplog) -> None:
    place = tmp_path / "netflix-prize"
    place.mkdir()
    (place / "combined_data_1.txt").write_text(
        "1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n2:\n1488844,4,2005-09-07\n"
    )
    (place / "combined_data_2.txt").write_text("3:\n7,1,1999-12-31\n")
    (place / "movie_titles.csv").write_text("1,2003,Dinosaur Planet\n2,2004,Isle of Man, TT\n")
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path))
    ds = datasets.load("netflix-prize")
    assert list(ds.user_ids) == [7, 822109, 1488844] and list(ds.item_ids) == [1, 2, 3]
    r = ds.ratings
    rows = sorted(
        zip(ds.user_ids[r.users], ds.item_ids[r.items], r.ratings, r.timestamps, strict=True)
    )
    assert rows[0] == (7, 3, 1.0, 946598400)  # 1999-12-31 00:00 UTC
    assert rows[-1][:3] == (1488844, 2, 4.0)
    assert list(ds.item_titles[:2]) == ["Dinosaur Planet (2003)", "Isle of Man, TT (2004)"]
    # a 5-row toy is not the 100M-row release
    assert any("expected" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


# -- other MovieLens layouts, on ML-100K rows rewritten in their format -----------------------


def _subset(ml100k: Dataset, n: int = 2000):
    r = ml100k.ratings
    return (ml100k.user_ids[r.users[:n]], ml100k.item_ids[r.items[:n]], r.ratings[:n],
            r.timestamps[:n])  # fmt: skip


def test_ml1m_dat_files_are_parsed(ml100k: Dataset, tmp_path: Path) -> None:
    u, i, rt, ts = _subset(ml100k)
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "ratings.dat").write_text(
        "".join(f"{a}::{b}::{int(c)}::{t}\n" for a, b, c, t in zip(u, i, rt, ts, strict=True))
    )
    movies = "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Señor: A Title (1996)::Drama\n"
    (d / "movies.dat").write_bytes(movies.encode("latin-1"))
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    entry = datasets.get_entry("ml-1m")
    raw = FORMATS["movielens-1m"](SourceFiles(d, entry.sources[0]["files"]), entry.options)
    ds = build_dataset(raw, "ml-1m", (1, 5), {}, list(entry.genres))
    assert len(ds.ratings) == 2000 and float(ds.ratings.ratings.sum()) == float(rt.sum())
    names = set(ds.item_features.names)
    assert {"genre=Animation", "genre=Children's", "genre=Comedy"} <= names
    titles = dict(zip(ds.item_ids, ds.item_titles, strict=True))
    assert titles[2] == "Señor: A Title (1996)"
    first_user = ds.user_features.matrix[int(np.flatnonzero(ds.user_ids == 1)[0])]
    assert [ds.user_features.names[j] for j in first_user.indices] == [
        "age=<18", "gender=F", "occupation=K-12 student",
    ]  # fmt: skip


def test_movielens_csv_release_is_parsed(ml100k: Dataset, tmp_path: Path) -> None:
    u, i, rt, ts = _subset(ml100k)
    buf = io.StringIO()
    buf.write("userId,movieId,rating,timestamp\n")
    buf.writelines(f"{a},{b},{c / 2 + 0.5},{t}\n" for a, b, c, t in zip(u, i, rt, ts, strict=True))
    with zipfile.ZipFile(tmp_path / "ml-latest-small.zip", "w") as zf:
        zf.writestr("ml-latest-small/ratings.csv", buf.getvalue())
        zf.writestr(
            "ml-latest-small/movies.csv",
            'movieId,title,genres\n1,"American President, The (1995)",Comedy|Drama|Romance\n'
            "2,Nothing (2000),(no genres listed)\n",
        )
    entry = datasets.get_entry("ml-latest-small")
    files = SourceFiles(tmp_path / "ml-latest-small.zip", entry.sources[0]["files"])
    ds = build_dataset(FORMATS["movielens-csv"](files, entry.options), "x", (0.5, 5), {})
    assert len(ds.ratings) == 2000
    assert set(np.unique(ds.ratings.ratings)) <= {1.0, 1.5, 2.0, 2.5, 3.0}
    assert ds.item_features.names == ("genre=Comedy", "genre=Drama", "genre=Romance")
    assert ds.item_titles[0] == "American President, The (1995)"
