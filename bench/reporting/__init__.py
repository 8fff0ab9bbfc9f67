"""Reports built from stored records only: the markdown leaderboard (``leaderboard``),
paired significance marks (``significance``), the regression check (``compare``) and the
PNG figures (``figures``).  ``report`` composes them for ``python -m bench report``.

Readers of records go through ``bench.execution.record`` and ``bench.execution.store`` and
import nothing of each other; ``report`` hands the leaderboard and the figures their
significance marks.
"""
