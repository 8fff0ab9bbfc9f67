"""``FORMATS``: the ``format`` name a registry entry (``datasets/*.toml``) gives -> the
reader of that format family."""

from __future__ import annotations

from bench.data.readers.movielens import (
    parse_movielens_1m,
    parse_movielens_100k,
    parse_movielens_csv,
)
from bench.data.readers.netflix import parse_netflix
from bench.data.readers.raw import Parser
from bench.data.readers.recbole import parse_recbole_atomic
from bench.data.readers.table import parse_table

FORMATS: dict[str, Parser] = {
    "movielens-100k": parse_movielens_100k,
    "recbole-atomic": parse_recbole_atomic,
    "movielens-1m": parse_movielens_1m,
    "movielens-csv": parse_movielens_csv,
    "netflix-prize": parse_netflix,
    "table": parse_table,
}
