"""One module per library; each defines ``bench.adapter.Adapter`` subclasses.

Installed as ``recbench_adapters`` (see pyproject.toml) so that it cannot clash with
other distributions' top-level ``adapters`` package.
"""
