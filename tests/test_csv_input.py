"""``csv:PATH`` input: column detection, options, and one clear line for every bad file."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data import datasets
from bench.errors import UserError


def write(tmp_path: Path, text: str, name: str = "ratings.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(spec: str) -> str:
    with pytest.raises(UserError) as err:
        datasets.load(spec)
    message = str(err.value)
    assert "\n" not in message  # the CLI prints it as one line
    return message


# -- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "sep"),
    [
        ("userId,movieId,rating,timestamp", ","),
        ("user_id\titem_id\trating\ttimestamp", "\t"),
        ("uid;iid;score;ts", ";"),
        ("User|ItemId|Ratings|Time", "|"),
        ("user item rating time", " "),
    ],
)
def test_columns_and_separator_are_detected(tmp_path: Path, header: str, sep: str) -> None:
    rows = ["10,7,4,100", "10,8,2,200", "3,7,5,300"]
    path = write(tmp_path, "\n".join([header, *(r.replace(",", sep) for r in rows)]) + "\n")
    ds = datasets.load(f"csv:{path}")
    assert (ds.n_users, ds.n_items, len(ds.ratings)) == (2, 2, 3)
    assert list(ds.user_ids) == [3, 10] and list(ds.item_ids) == [7, 8]
    r = ds.ratings
    got = sorted(
        zip(ds.user_ids[r.users], ds.item_ids[r.items], r.ratings, r.timestamps, strict=True)
    )
    assert got == [(3, 7, 5.0, 300), (10, 7, 4.0, 100), (10, 8, 2.0, 200)]
    assert ds.rating_scale == (2.0, 5.0)  # inferred min..max without a declared scale
    assert ds.meta["checksum"].startswith("sha256:") and ds.meta["duplicates_dropped"] == 0


def test_without_timestamp_column_timestamps_are_none(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n1,1,3\n2,1,4\n")
    ds = datasets.load(f"csv:{path}")
    assert ds.ratings.timestamps is None


def test_explicit_columns_scale_and_string_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "who,what,stars,when\nbob,x,3,2020-01-02\nann,y,1,2020-01-01\n")
    ds = datasets.load(f"csv:{path}?user=who&item=what&rating=stars&timestamp=when&scale=1-5")
    assert list(ds.user_ids) == ["ann", "bob"] and ds.rating_scale == (1.0, 5.0)
    assert ds.ratings.timestamps.min() == 1577836800  # 2020-01-01 UTC
    assert ds.meta["columns"] == {
        "user": "who",
        "item": "what",
        "rating": "stars",
        "timestamp": "when",
    }


def test_headerless_file_with_column_positions(tmp_path: Path) -> None:
    path = write(tmp_path, "196\t242\t3\t881250949\n186\t302\t3\t891717742\n", "u.data")
    ds = datasets.load(f"csv:{path}?header=none&user=0&item=1&rating=2&timestamp=3&scale=1-5")
    assert list(ds.user_ids) == [186, 196] and len(ds.ratings) == 2


def test_parquet_input(tmp_path: Path) -> None:
    path = tmp_path / "ratings.parquet"
    pd.DataFrame(
        {"user_id": [1, 2, 2], "item_id": [5, 5, 6], "rating": [1.0, 2.5, 5.0]}
    ).to_parquet(path)
    ds = datasets.load(f"csv:{path}?scale=0.5-5")
    assert len(ds.ratings) == 3 and ds.rating_scale == (0.5, 5.0)
    assert np.allclose(np.sort(ds.ratings.ratings), [1.0, 2.5, 5.0])


def test_ml100k_raw_file_loads_like_the_registry_entry(ml100k, tmp_path: Path) -> None:
    """The RecBole copy of ML-100K as a plain TSV gives the same ratings as ``ml-100k``."""
    inter = tmp_path / "ml-100k.tsv"
    lines = ["user\titem\trating\ttimestamp"]
    r = ml100k.ratings
    order = np.random.default_rng(0).permutation(len(r))  # file order must not matter
    lines += [
        f"{u}\t{i}\t{int(x)}\t{t}"
        for u, i, x, t in zip(
            ml100k.user_ids[r.users[order]],
            ml100k.item_ids[r.items[order]],
            r.ratings[order],
            r.timestamps[order],
            strict=True,
        )
    ]
    inter.write_text("\n".join(lines) + "\n")
    ds = datasets.load(f"csv:{inter}?scale=1-5")
    assert ds.fingerprint() == ml100k.fingerprint()


# -- duplicates -----------------------------------------------------------------------------


def test_duplicates_keep_the_latest_by_timestamp(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="bench")
    path = write(tmp_path, "user,item,rating,timestamp\n1,1,5,300\n1,1,2,100\n1,2,4,1\n1,1,3,200\n")
    ds = datasets.load(f"csv:{path}")
    assert len(ds.ratings) == 2
    assert ds.ratings.ratings[0] == 5.0  # the row with timestamp 300
    assert ds.meta["duplicates_dropped"] == 2 and ds.meta["rows_read"] == 4
    notes = [r.getMessage() for r in caplog.records]
    assert notes == [f"{path}: dropped 2 duplicate (user, item) rows, kept the latest"]


def test_duplicates_without_timestamps_keep_the_last_row(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n1,1,5\n1,1,2\n2,1,4\n1,1,3\n")
    ds = datasets.load(f"csv:{path}")
    assert list(ds.ratings.ratings) == [3.0, 4.0]
    assert ds.meta["duplicates_dropped"] == 2


# -- validation: one line naming the file and the first bad row ---------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert load_error(f"csv:{path}") == f"{path}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    msg = load_error(f"csv:{tmp_path}")
    assert msg == f"{tmp_path}: is a directory, expected a CSV, TSV or parquet file"


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load_error(f"csv:{path}") == f"{path}: file is empty"


def test_header_without_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n")
    assert load_error(f"csv:{path}") == f"{path}: has a header but no rows"


def test_missing_rating_column(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,grade\n1,2,3\n")
    msg = load_error(f"csv:{path}")
    assert msg.startswith(f"{path}: no rating column (looked for rating, ratings, score")
    assert msg.endswith(
        "name it with ?rating=COLUMN, or ?count=COLUMN or ?rating=none for implicit-only "
        "data); columns are: user, item, grade"
    )


def test_explicit_column_that_does_not_exist(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n1,2,3\n")
    msg = load_error(f"csv:{path}?item=movie")
    assert msg == f"{path}: no column 'movie' for item; columns are: user, item, rating"


def test_non_numeric_rating_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n1,1,4\n1,2,five\n1,3,x\n")
    assert load_error(f"csv:{path}") == f"{path} line 3: rating 'five' is not a number"


def test_missing_rating_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n1,1,4\n\n1,2,4\n1,3,\n")
    # the blank line is skipped but still counted, so the line number is the editor's
    assert load_error(f"csv:{path}") == f"{path} line 5: rating is missing or NaN"


def test_nan_rating_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "user\titem\trating\n1\t1\tNaN\n")
    assert load_error(f"csv:{path}") == f"{path} line 2: rating is missing or NaN"


def test_rating_outside_declared_scale(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n1,1,4\n1,2,6\n1,3,0\n")
    msg = load_error(f"csv:{path}?scale=1-5")
    assert msg == f"{path} line 3: rating 6 is outside the rating scale 1-5"


def test_rating_outside_registry_scale(table_entry) -> None:
    path = table_entry("stars", "r.csv", "user,item,rating\n1,1,4\n1,2,9\n")
    msg = load_error("stars")
    assert msg == f"{path} line 3: rating 9 is outside the rating scale 1-5"


def test_missing_user_id_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n1,1,4\n,2,4\n")
    assert load_error(f"csv:{path}") == f"{path} line 3: user id is missing"


def test_bad_timestamp_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating,timestamp\n1,1,4,5\n1,2,4,yesterday\n")
    assert (
        load_error(f"csv:{path}") == f"{path} line 3: timestamp 'yesterday' is not a number or date"
    )


def test_bad_scale_and_unknown_option(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n1,1,4\n")
    assert "scale '5-1' must look like 1-5" in load_error(f"csv:{path}?scale=5-1")
    msg = load_error(f"csv:{path}?usr=a")
    assert msg.startswith(f"{path}: unknown option(s) usr; known: user, item, rating")


def test_dedupe_matches_a_groupby_reference() -> None:
    """Latest timestamp wins, ties go to the later row: checked against pandas on random rows."""
    from bench.data.readers.coding import dedupe_latest

    rng = np.random.default_rng(0)
    n = 20_000
    users = rng.integers(0, 300, n).astype(np.int32)
    items = rng.integers(0, 40, n).astype(np.int32)
    times = rng.integers(0, 5, n)  # many ties
    kept = dedupe_latest(users, items, 40, times)
    frame = pd.DataFrame({"u": users, "i": items, "t": times, "row": np.arange(n)})
    expected = frame.sort_values(["u", "i", "t", "row"]).groupby(["u", "i"]).tail(1)["row"]
    assert np.array_equal(kept, expected.to_numpy())  # also sorted by (user, item)
    kept_no_time = dedupe_latest(users, items, 40, None)
    last_rows = frame.sort_values(["u", "i", "row"]).groupby(["u", "i"]).tail(1)["row"]
    assert np.array_equal(kept_no_time, last_rows.to_numpy())


# -- ids are opaque labels: never through float, never merged by numeric value -------------


def user_ids_of(spec: str) -> list:
    ds = datasets.load(spec)
    return list(ds.user_ids)


def test_ids_with_leading_zeros_are_distinct_from_their_number(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n007,1,4\n7,1,3\n")
    ds = datasets.load(f"csv:{path}")
    assert ds.n_users == 2 and list(ds.user_ids) == ["007", "7"]
    assert len(ds.ratings) == 2 and ds.meta["duplicates_dropped"] == 0


def test_exponent_ids_are_labels_not_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating\n1e3,1,4\n1000,1,3\n")
    assert user_ids_of(f"csv:{path}") == ["1000", "1e3"]


def test_ids_beyond_float_precision_stay_distinct(tmp_path: Path) -> None:
    """200 ids near 1.2e19 (above 2**63): through float64 they collapsed to 2 users."""
    ids = [str(12_000_000_000_000_000_000 + k) for k in range(200)]
    rows = "".join(f"{u},{k % 7},3\n" for k, u in enumerate(ids))
    path = write(tmp_path, "user,item,rating\n" + rows)
    ds = datasets.load(f"csv:{path}")
    assert ds.n_users == 200 and sorted(ds.user_ids) == sorted(ids)


def test_ids_at_and_above_two_to_the_64_are_kept_exactly(tmp_path: Path) -> None:
    ids = [str(2**63), str(2**64 - 1), str(2**64), str(10**30)]
    path = write(tmp_path, "user,item,rating\n" + "".join(f"{u},1,3\n" for u in ids))
    ds = datasets.load(f"csv:{path}")  # no "output array is read-only" traceback
    assert sorted(ds.user_ids) == sorted(ids)  # not wrapped negative, not rounded
    r = ds.ratings
    assert sorted(ds.user_ids[r.users]) == sorted(ids)


def test_canonical_integer_ids_stay_int64_sorted_numerically(tmp_path: Path) -> None:
    lo, hi = -(2**63), 2**63 - 1
    path = write(tmp_path, f"user,item,rating\n10,1,3\n9,1,3\n {lo} ,1,3\n{hi},1,3\n0,1,3\n")
    ds = datasets.load(f"csv:{path}")
    assert ds.user_ids.dtype == np.int64
    assert ds.user_ids.tolist() == [lo, 0, 9, 10, hi]  # exact at both int64 bounds


@pytest.mark.parametrize("bad", ["+5", "-0", "5.0", "05", "0x5"])
def test_one_non_canonical_id_makes_the_column_text(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, f"user,item,rating\n5,1,3\n{bad},1,3\n")
    assert user_ids_of(f"csv:{path}") == sorted(["5", bad])


def test_parquet_id_columns_keep_their_values_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ids.parquet"
    pd.DataFrame(
        {
            "user": np.array([2**63, 2**64 - 1, 5], dtype=np.uint64),  # above int64
            "item": np.array([1.0, 2.5, 3.0]),  # not all integral
            "rating": [1.0, 2.0, 3.0],
        }
    ).to_parquet(path)
    ds = datasets.load(f"csv:{path}")
    assert sorted(ds.user_ids) == sorted([str(2**63), str(2**64 - 1), "5"])
    assert list(ds.item_ids) == ["1.0", "2.5", "3.0"]
    path2 = tmp_path / "ints.parquet"
    pd.DataFrame(
        {
            "user": np.array([3, 2**62], dtype=np.uint64),  # fits int64: stays numeric
            "item": np.array([7.0, 2.0**52]),  # integral and exact in a float
            "rating": [1.0, 2.0],
        }
    ).to_parquet(path2)
    ds = datasets.load(f"csv:{path2}")
    assert ds.user_ids.dtype == np.int64 and ds.user_ids.tolist() == [3, 2**62]
    assert ds.item_ids.dtype == np.int64 and ds.item_ids.tolist() == [7, 2**52]
    path3 = tmp_path / "big_floats.parquet"
    pd.DataFrame({"user": [1.0, 2.0**53], "item": [1, 1], "rating": [1.0, 2.0]}).to_parquet(path3)
    ds = datasets.load(f"csv:{path3}")  # 2**53 is beyond exact float integers: text
    assert ds.user_ids.dtype == object and len(ds.user_ids) == 2


def test_titles_and_features_match_ids_of_the_same_kind() -> None:
    """Side files match the ratings' ids by the same rule: ``"007"`` is not item 7."""
    from bench.data.readers.coding import build_dataset
    from bench.data.readers.raw import RawRatings

    raw = RawRatings(
        np.array([1, 1, 2]),
        np.array([7, 8, 8]),
        np.array([3.0, 4.0, 5.0]),
        None,
        label="mem",
    )
    raw.item_titles = (np.array(["007", "8", "9"], dtype=object), np.array(["a", "b", "c"]))
    raw.item_feature_pairs = (np.array(["007", "8"], dtype=object), np.array(["g=x", "g=y"]))
    ds = build_dataset(raw, "mem", (1.0, 5.0), {})
    assert ds.item_ids.tolist() == [7, 8]
    assert ds.item_titles.tolist() == ["", "b"]
    assert ds.item_features.matrix.toarray().tolist() == [[0.0], [1.0]]
    # text ids: an integer in a side file matches its decimal text, "7" is not "007"
    raw.items = np.array(["007", "8", "8"], dtype=object)
    raw.item_titles = (np.array([7, 8]), np.array(["seven", "eight"]))
    raw.item_feature_pairs = None
    ds = build_dataset(raw, "mem", (1.0, 5.0), {})
    assert ds.item_ids.tolist() == ["007", "8"] and ds.item_titles.tolist() == ["", "eight"]


# -- compressed files ------------------------------------------------------------------------


def _compress(kind: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    if kind == "gz":
        return gzip.compress(data)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz", "zst"])
@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t")])
def test_compressed_files_load_like_the_plain_file(
    tmp_path: Path, compression: str, suffix: str, sep: str
) -> None:
    rng = np.random.default_rng(0)
    rows = [
        sep.join(map(str, (f"u{u}", i, r, t)))
        for u, i, r, t in zip(
            rng.integers(0, 50, 400), rng.integers(0, 80, 400), rng.integers(1, 6, 400),
            rng.integers(10**9, 2 * 10**9, 400), strict=True,
        )
    ]  # fmt: skip
    text = sep.join(["user", "item", "rating", "timestamp"]) + "\n" + "\n".join(rows) + "\n"
    plain = tmp_path / f"ratings{suffix}"
    plain.write_text(text)
    packed = tmp_path / f"ratings{suffix}.{compression}"
    packed.write_bytes(_compress(compression, text.encode()))
    assert packed.read_bytes()[:64] != text.encode()[:64]  # really compressed
    expected = datasets.load(f"csv:{plain}")
    got = datasets.load(f"csv:{packed}")
    assert got.fingerprint() == expected.fingerprint()
    assert list(got.user_ids) == list(expected.user_ids)
    assert got.meta["columns"] == expected.meta["columns"]


def test_compressed_parquet_loads(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user": [1, 2, 2], "item": [5, 5, 6], "rating": [1.0, 2.5, 5.0]})
    plain = tmp_path / "r.parquet"
    frame.to_parquet(plain)
    packed = tmp_path / "r.parquet.gz"
    packed.write_bytes(_compress("gz", plain.read_bytes()))
    assert (
        datasets.load(f"csv:{packed}").fingerprint() == datasets.load(f"csv:{plain}").fingerprint()
    )


def test_corrupt_compressed_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.gz"
    path.write_bytes(b"this is not gzip data at all\n")
    assert load_error(f"csv:{path}").startswith(f"{path}: cannot decompress")
