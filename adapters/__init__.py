"""One module per library; each defines ``bench.adapter.Adapter`` subclasses.

Installed as ``recbench_adapters`` (see pyproject.toml) so that it cannot clash with
other distributions' top-level ``adapters`` package.
"""

#: the library (adapter-name prefix) of a module not named like it; every other module's
#: adapters are named ``<module>.<Model>`` (``bench.execution.registry`` imports a module
#: only when a name or pattern of its library is asked for)
LIBRARIES = {"baselines": "baseline"}
