"""Reports built from stored records only: the leaderboard, significance marks, the regression
check (``compare``), figures and per-user packs; ``report`` composes them for ``bench report``.

Readers of records go through ``bench.execution.record`` and ``bench.execution.store`` and
import nothing of each other; ``report`` hands the leaderboard and the figures their
significance marks.
"""
