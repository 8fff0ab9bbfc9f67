"""What ``bench list [--json]`` and ``bench show ADAPTER`` print: datasets, adapters and
suites with their availability, and one adapter's parameters, whose defaults they are and
its tuning search space.  Data only (plain dicts, JSON-ready); ``bench.cli`` prints them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from bench.adapter import Adapter
from bench.execution import params, registry, suites

#: parameters every adapter takes, set per trial by the suite / CLI, never the library's
HARNESS_PARAMS = ("seed", "threads")
#: the shared implicit-feedback policy's parameters (``bench.data.feedback``), recbench's
FEEDBACK_PARAMS = ("feedback", "feedback_threshold", "feedback_alpha")
#: the capabilities ``show`` reports (class attributes of ``bench.adapter.Adapter``)
CAPABILITIES = ("predicts_ratings", "ranks", "uses_side_features", "scores_cold_users",
                "scores_cold_items", "folds_in_users", "stochastic", "parallel_sgd")


def listing() -> dict[str, list[dict[str, Any]]]:
    """Every dataset entry, adapter and suite, with whether it is available here."""
    from bench.data import datasets

    out: dict[str, list[dict[str, Any]]] = {"datasets": [], "adapters": [], "suites": []}
    for entry in datasets.list_entries():
        item = dataclasses.asdict(entry)
        # usable with no network but the package registries; "downloadable": from its
        # official URL when there is network
        item["available"] = bool(entry.cached or entry.raw_present or entry.fetchable_offline)
        item["downloadable"] = "url" in entry.sources
        out["datasets"].append(item)
    for name, info in sorted(registry.discover().items()):
        out["adapters"].append({"name": name, "module": info.module,
                                "available": info.cls is not None, "error": info.error})
    for name, path in sorted(suites.suite_files().items()):
        out["suites"].append({"name": name, "path": str(path),
                              "description": suites.parse_file(path).get("description", "")})
    return out


def listing_text() -> str:
    """``bench list``'s plain-text form: one line per dataset, adapter and suite."""
    from bench.data import datasets

    lines = ["datasets:", *(f"  {entry}" for entry in datasets.list_entries()), "generators:",
             *(f"  {name:<44} {what}" for name, what in datasets.GENERATORS), "adapters:"]
    for name, info in sorted(registry.discover().items()):
        state = "available" if info.cls else f"unavailable ({info.error})"
        lines.append(f"  {name:<28} {state}")
    lines.append("suites:")
    for name, path in sorted(suites.suite_files().items()):
        lines.append(f"  {name:<12} {suites.parse_file(path).get('description', '')}")
    return "\n".join(lines)


def whose_default(cls: type[Adapter], name: str, base: type[Adapter] | None) -> str:
    """Who chose parameter ``name``'s default: ``library``, ``recbench`` or ``harness``."""
    if name in HARNESS_PARAMS:
        return "harness"
    if base is not None and base.default_params().get(name) != cls.default_params().get(name):
        return "recbench"  # a preset's own default
    if cls.defaults_by == "recbench" or name in FEEDBACK_PARAMS:
        return "recbench"
    return "recbench" if name in cls.recbench_defaults else "library"


def adapter(name: str) -> dict[str, Any]:
    """One adapter's description: parameters (default, whose default, common name),
    search space and capabilities.  Unknown or unavailable: ``UserError`` (one line)."""
    cls = registry.get(name)
    base = registry.get(cls.preset_of) if cls.preset_of else None
    defaults = cls.default_params()
    common = {own: c for c, own in params.library_names(name, defaults).items()}
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    return {
        "name": name,
        "library": cls.library,
        "module": cls.__module__,
        "preset_of": cls.preset_of or None,
        "description": " ".join(doc.replace("``", "").split()),
        "defaults_by": cls.defaults_by,
        "recbench_defaults": list(cls.recbench_defaults),
        "parameters": [
            {"name": p, "default": v, "default_by": whose_default(cls, p, base),
             "common_name": common.get(p)}
            for p, v in defaults.items()
        ],
        "search_space": {k: list(v) for k, v in cls.search_space.items()},
        "capabilities": {c: bool(getattr(cls, c)) for c in CAPABILITIES},
    }


def adapter_text(info: dict[str, Any]) -> str:
    """``bench show``'s plain-text form of ``adapter(name)``."""
    by = {"library": f"the library's ({info['library'] or 'the wrapped library'})",
          "recbench": "recbench's"}
    lines = [f"{info['name']}: {info['description']}".rstrip(": ")]
    if info["preset_of"]:
        lines.append(f"preset of {info['preset_of']} (other defaults, same model)")
    lines += [f"module {info['module']}; defaults: {by[info['defaults_by']]}"
              + (f", but recbench's for {', '.join(info['recbench_defaults'])}"
                 if info["recbench_defaults"] else ""), "", "parameters:"]
    width = max((len(p["name"]) for p in info["parameters"]), default=0)
    shown = [(p, json.dumps(p["default"])) for p in info["parameters"]]
    value_width = max((len(v) for _, v in shown), default=0)
    for p, value in shown:
        common = f"  (common name: {p['common_name']})" if p["common_name"] else ""
        lines.append(f"  {p['name']:<{width}}  {value:<{value_width}}  "
                     f"{p['default_by']} default{common}")
    lines += ["", "search space (tuned runs):"]
    if info["search_space"]:
        lines += [f"  {k}: {json.dumps(v)}" for k, v in info["search_space"].items()]
    else:
        lines.append("  none (not tuned)")
    caps = [c for c, on in info["capabilities"].items() if on]
    lines += ["", f"capabilities: {', '.join(caps) or 'none'}"]
    return "\n".join(lines)
