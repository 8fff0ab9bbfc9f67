"""Declarative dataset registry: one TOML file per dataset, read by ``bench.data.datasets``.

Installed as ``recbench_datasets``; it holds data descriptions only, never data.
"""
