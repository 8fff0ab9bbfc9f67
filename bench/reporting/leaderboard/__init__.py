"""The markdown leaderboard, built from stored records only: the page (``page``: header,
legend, one section per suite group) and each of its tables (``table``)."""

from bench.reporting.leaderboard.page import (
    DEFAULTS_TEXT,
    HARNESS_TEXT,
    candidate_counts,
    env_summary,
    legend,
    protocol_note,
    render,
    stale_note,
    table_order,
)
from bench.reporting.leaderboard.table import (
    DRAW_MARK,
    HARNESS_MARK,
    SIDE_MARK,
    Marks,
    columns_for,
    labels_for,
    record_flag,
    render_table,
    sort_column,
)

__all__ = [
    "DEFAULTS_TEXT",
    "DRAW_MARK",
    "HARNESS_MARK",
    "HARNESS_TEXT",
    "SIDE_MARK",
    "Marks",
    "candidate_counts",
    "columns_for",
    "env_summary",
    "labels_for",
    "legend",
    "protocol_note",
    "record_flag",
    "render",
    "render_table",
    "sort_column",
    "stale_note",
    "table_order",
]
