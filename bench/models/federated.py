"""Federated matrix factorisation: a FedAvg simulation (one process plays every client).

Model: ``r_ui ~ mu + b_u + b_i + p_u . q_i``.  Each user is a client that keeps its
ratings, its bias ``b_u`` and its factor ``p_u`` to itself; the server holds ``mu``
(aggregated once from per-client sums and counts), the item biases and factors.

One round:

1. the server samples ``ceil(fraction * clients)`` clients (users with train rows) with a
   generator seeded by ``(seed, round)`` and sends them the item model;
2. each sampled client runs ``local_epochs`` epochs of SGD over its own ratings (in a
   seeded order fixed at fit), updating ``b_u, p_u`` in place and a local copy of the rows
   ``b_i, q_i`` of the items it rated;
3. it uploads, for each item it rated, the change of ``(b_i, q_i)``: ``factors + 1``
   float32 values plus the int32 item code (the sparse protocol; it tells the server which
   items the client rated, which a dense upload of the whole item model would hide);
4. the server averages each item's changes over the clients that sent one, weighted by
   the clients' numbers of ratings (FedAvg's weights), and adds ``server_lr`` times it.

The per-client work is one numba loop over the round's clients, in sampling order,
on one thread: the result depends only on the seed, whatever the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from bench.data.model import Ratings
from bench.errors import UserError

FLOAT_BYTES = 4  # float32 on the wire
INDEX_BYTES = 4  # int32 item codes on the wire


@numba.njit(cache=False, fastmath=False)
def _round(
    clients: np.ndarray,
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    mu: float,
    user_bias: np.ndarray,
    user_factors: np.ndarray,
    item_bias: np.ndarray,
    item_factors: np.ndarray,
    lr: float,
    reg: float,
    reg_bias: float,
    epochs: int,
    server_lr: float,
    delta_bias: np.ndarray,
    delta_factors: np.ndarray,
    weight: np.ndarray,
    local_bias: np.ndarray,
    local_factors: np.ndarray,
) -> None:
    """One FedAvg round over ``clients`` (in place on the model arrays)."""
    k = user_factors.shape[1]
    delta_bias[:] = 0.0
    delta_factors[:] = 0.0
    weight[:] = 0.0
    for c in clients:
        lo = indptr[c]
        n = indptr[c + 1] - lo
        for j in range(n):  # the client's copy of the item rows it rated
            i = items[lo + j]
            local_bias[j] = item_bias[i]
            for f in range(k):
                local_factors[j, f] = item_factors[i, f]
        for _ in range(epochs):
            for j in range(n):
                pred = mu + user_bias[c] + local_bias[j]
                for f in range(k):
                    pred += user_factors[c, f] * local_factors[j, f]
                err = ratings[lo + j] - pred
                user_bias[c] += lr * (err - reg_bias * user_bias[c])
                local_bias[j] += lr * (err - reg_bias * local_bias[j])
                for f in range(k):
                    p = user_factors[c, f]
                    q = local_factors[j, f]
                    user_factors[c, f] = p + lr * (err * q - reg * p)
                    local_factors[j, f] = q + lr * (err * p - reg * q)
        w = float(n)  # FedAvg weight: the client's number of ratings
        for j in range(n):  # the upload, accumulated by the server
            i = items[lo + j]
            weight[i] += w
            delta_bias[i] += w * (local_bias[j] - item_bias[i])
            for f in range(k):
                delta_factors[i, f] += w * (local_factors[j, f] - item_factors[i, f])
    for i in range(item_bias.shape[0]):
        if weight[i] > 0.0:
            step = server_lr / weight[i]
            item_bias[i] += step * delta_bias[i]
            for f in range(k):
                item_factors[i, f] += step * delta_factors[i, f]


@dataclass
class FederatedMF:
    """The simulation's settings; ``fit`` leaves the model and the traffic counts."""

    factors: int = 16
    rounds: int = 100
    fraction: float = 0.1
    local_epochs: int = 5
    lr: float = 0.01
    reg: float = 0.05
    reg_bias: float = 0.02
    server_lr: float = 1.0
    init_std: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise UserError(f"fraction must be in (0, 1], got {self.fraction!r}")
        for name in ("factors", "rounds", "local_epochs"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)!r}")

    def fit(self, ratings: Ratings) -> FederatedMF:
        n_users, n_items, k = ratings.n_users, ratings.n_items, int(self.factors)
        rng = np.random.default_rng([self.seed, 0xFED])
        # Rows grouped by client, in a seeded order within each client (its SGD order).
        order = np.lexsort((rng.random(len(ratings)), ratings.users))
        users = ratings.users[order]
        items = np.ascontiguousarray(ratings.items[order], dtype=np.int32)
        values = np.ascontiguousarray(ratings.ratings[order], dtype=np.float64)
        counts = np.bincount(users, minlength=n_users)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        self.mu_ = float(values.mean()) if len(values) else 0.0
        self.user_bias_ = np.zeros(n_users)
        self.user_factors_ = rng.normal(0.0, self.init_std, (n_users, k))
        self.item_bias_ = np.zeros(n_items)
        self.item_factors_ = rng.normal(0.0, self.init_std, (n_items, k))
        clients = np.flatnonzero(counts > 0)
        per_round = max(1, int(np.ceil(self.fraction * len(clients)))) if len(clients) else 0
        most = int(counts.max()) if len(counts) else 0
        scratch = (
            np.zeros(n_items), np.zeros((n_items, k)), np.zeros(n_items),
            np.zeros(most), np.zeros((most, k)),
        )  # fmt: skip
        upload_values = 0
        for t in range(int(self.rounds)):
            chosen = np.random.default_rng([self.seed, 0xC11E, t]).choice(
                clients, size=per_round, replace=False
            )
            _round(
                chosen.astype(np.int64), indptr, items, values, self.mu_,
                self.user_bias_, self.user_factors_, self.item_bias_, self.item_factors_,
                self.lr, self.reg, self.reg_bias, int(self.local_epochs), self.server_lr,
                *scratch,
            )  # fmt: skip
            upload_values += int(counts[chosen].sum())
        self.clients_ = int(len(clients))
        self.clients_per_round_ = int(per_round)
        # Per rated item: factors + 1 float32 values and the int32 item code.
        bytes_per_item = (k + 1) * FLOAT_BYTES + INDEX_BYTES
        self.upload_bytes_total_ = int(upload_values * bytes_per_item)
        sent = max(1, int(self.rounds) * per_round)
        self.upload_bytes_per_client_round_ = self.upload_bytes_total_ / sent
        self.model_bytes_ = int(n_items * (k + 1) * FLOAT_BYTES)  # the broadcast item model
        return self

    def traffic(self) -> dict:
        """Rounds and bytes, JSON-ready (the adapter's ``fitted_info``)."""
        return {
            "rounds": int(self.rounds),
            "clients": self.clients_,
            "clients_per_round": self.clients_per_round_,
            "protocol": "sparse upload: (factors+1) float32 + int32 item code per rated item",
            "upload_bytes_per_client_round": round(self.upload_bytes_per_client_round_, 1),
            "upload_bytes_total": self.upload_bytes_total_,
            "download_bytes_per_client_round": self.model_bytes_,
        }

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        dot = np.einsum("ij,ij->i", self.user_factors_[users], self.item_factors_[items])
        return self.mu_ + self.user_bias_[users] + self.item_bias_[items] + dot

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        block = self.user_factors_[users] @ self.item_factors_.T
        block += (self.mu_ + self.user_bias_[users])[:, None]
        block += self.item_bias_[None, :]
        return block
