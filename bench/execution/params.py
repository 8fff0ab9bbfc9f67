"""Common parameter names beside each library's own.

Each library keeps its own hyper-parameter names (surprise's ``n_factors``, LightFM's
``no_components``, Spark's ``rank``): records, suites and tables use them unchanged.  For
reading results across libraries, ``common(adapter, params)`` maps four of them onto one
name each:

* ``factors``: the latent dimension;
* ``regularization``: the L2 weight of the factors;
* ``iterations``: passes over the training data (epochs, ALS sweeps, FedAvg rounds);
* ``learning_rate``: the SGD / Adam step size.

The mapping is small and per adapter family (the library prefix of the adapter name): a
family lists, per common name, the library names that mean it, and the first one an
adapter has is taken.  A parameter that only resembles a common one is left out rather
than forced in (LightFM's ``item_alpha`` / ``user_alpha`` are two regularisations, not
one; scikit-learn's ``n_iter`` counts power iterations of the randomized SVD, not passes
of training; the baselines' ``reg_user`` / ``reg_item`` likewise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMMON = ("factors", "regularization", "iterations", "learning_rate")

#: family (adapter name before the dot) -> common name -> library names, first present wins
FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "implicit": {"factors": ("factors",), "regularization": ("regularization",),
                 "iterations": ("iterations",), "learning_rate": ("learning_rate",)},
    "lightfm": {"factors": ("no_components",), "iterations": ("epochs",),
                "learning_rate": ("learning_rate",)},
    "surprise": {"factors": ("n_factors",), "regularization": ("reg_all",),
                 "iterations": ("n_epochs",), "learning_rate": ("lr_all",)},
    "spark": {"factors": ("rank",), "regularization": ("regParam",),
              "iterations": ("maxIter",)},
    "scipy": {"factors": ("rank",)},
    "sklearn": {"factors": ("n_components",)},
    "torch": {"factors": ("factors",), "regularization": ("weight_decay",),
              "iterations": ("epochs",), "learning_rate": ("learning_rate",)},
    # in-house models: recbench.ALS (reg_factors), ImplicitALS / EASE (regularization),
    # FederatedMF (rounds of FedAvg, reg, lr)
    "recbench": {"factors": ("factors",),
                 "regularization": ("regularization", "reg_factors", "reg"),
                 "iterations": ("iterations", "rounds"), "learning_rate": ("lr",)},
    "baseline": {"iterations": ("n_iters",)},
}


def family(adapter: str) -> str:
    return adapter.split(".", 1)[0]


def library_names(adapter: str, names: Mapping[str, Any] | list[str]) -> dict[str, str]:
    """Common name -> the adapter's own parameter name, for the parameters it has."""
    out: dict[str, str] = {}
    for common, candidates in FAMILIES.get(family(adapter), {}).items():
        own = next((c for c in candidates if c in names), None)
        if own is not None:
            out[common] = own
    return out


def common(adapter: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Common name -> value of the adapter's parameter that means it (``params``: a
    record's or an adapter's parameters by the library's names)."""
    return {c: params[own] for c, own in library_names(adapter, params).items()}
