"""Neural collaborative filtering in PyTorch (CPU): He et al. 2017's GMF / MLP / NeuMF for
implicit feedback, and an MLP rating regressor for explicit ratings.

* ``NCFNet`` (He, Liao, Zhang, Nie, Hu, Chua 2017, "Neural Collaborative Filtering"):
  ``kind="gmf"``: ``h . (p_u * q_i) + b``; ``kind="mlp"``: a ReLU tower over the concatenated
  user and item embeddings, halving in width per layer; ``kind="neumf"``: both, with separate
  embeddings, joined by one output layer.  Trained from scratch (no GMF / MLP pre-training)
  with binary cross-entropy on every positive and ``negatives`` items sampled per positive
  and epoch among the items the user has no interaction with (``sample_negatives``), Adam.
* ``RatingMLP``: ``mu + MLP([p_u, q_i, user side features, item side features])`` fitted by
  mean squared error to the ratings, Adam.

Determinism: weights are initialised from ``torch.manual_seed(seed)`` (in a forked RNG
state, so the caller's global state is untouched), negatives and the batch order come from
a numpy ``Generator`` seeded with the seed, and ``torch.use_deterministic_algorithms`` is on
while training; at a fixed thread count two fits give bit-identical weights.

Scoring is always over the whole catalogue, in chunks of (user, item) pairs, with
``torch.no_grad``; a GMF's scores are a plain product of factors (``gmf_factors``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from bench.execution.threads import torch_limited

#: (user, item) pairs per forward pass when scoring: bounds the activations' memory
PAIRS_PER_CHUNK = 1 << 17
KINDS = ("gmf", "mlp", "neumf")


@contextlib.contextmanager
def torch_settings(seed: int | None, threads: int) -> Iterator[None]:
    """Threads, deterministic kernels and (when ``seed`` is given) a seeded, forked global
    RNG, restored on exit."""
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with torch_limited(threads):
            if seed is None:
                yield
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    yield
    finally:
        torch.use_deterministic_algorithms(deterministic_before)


def tower(width_in: int, layers: int) -> tuple[nn.Sequential, int]:
    """``layers`` Linear + ReLU layers, each half as wide as its input (at least 1), as He
    et al.'s MLP (layers [64, 32, 16, 8]: a 64-wide input and 3 layers); returns the tower
    and its output width."""
    if layers < 1:
        raise ValueError(f"an MLP needs at least one layer, got {layers}")
    modules: list[nn.Module] = []
    for _ in range(layers):
        width = max(1, width_in // 2)
        modules += [nn.Linear(width_in, width), nn.ReLU()]
        width_in = width
    return nn.Sequential(*modules), width_in


def _grid_tower(
    mlp: nn.Sequential, user_part: torch.Tensor, item_part: torch.Tensor
) -> torch.Tensor:
    """``mlp(cat([user_x, item_x]))`` for every (user, item) of a block, from the first
    layer's user part ``user_x @ W_u.T + b`` (users, w) and item part ``item_x @ W_i.T``
    (items, w): the first layer is computed once per user and per item, not per pair.
    Returns (users * items, out width)."""
    hidden = torch.relu(user_part[:, None, :] + item_part[None, :, :])
    hidden = hidden.reshape(-1, hidden.shape[2])
    return mlp[2:](hidden) if len(mlp) > 2 else hidden


def _split_first_layer(mlp: nn.Sequential, user_width: int) -> tuple[torch.Tensor, ...]:
    first = mlp[0]
    return first.weight[:, :user_width], first.weight[:, user_width:], first.bias


class NCFNet(nn.Module):
    """GMF, MLP or NeuMF (``kind``) on user / item codes; ``forward`` returns logits."""

    def __init__(
        self, n_users: int, n_items: int, kind: str, factors: int, mlp_width: int,
        mlp_layers: int,
    ) -> None:  # fmt: skip
        """``mlp_width``: the MLP's input, user and item embeddings each half of it."""
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        out_width = 0
        if kind in ("gmf", "neumf"):
            self.gmf_user = nn.Embedding(n_users, factors)
            self.gmf_item = nn.Embedding(n_items, factors)
            out_width += factors
        if kind in ("mlp", "neumf"):
            half = max(1, mlp_width // 2)
            self.mlp_user = nn.Embedding(n_users, half)
            self.mlp_item = nn.Embedding(n_items, half)
            self.mlp, width = tower(2 * half, mlp_layers)
            out_width += width
        self.out = nn.Linear(out_width, 1)
        for module in self.modules():  # He et al.: N(0, 0.01) embeddings
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.01)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.kind in ("gmf", "neumf"):
            parts.append(self.gmf_user(users) * self.gmf_item(items))
        if self.kind in ("mlp", "neumf"):
            parts.append(self.mlp(torch.cat([self.mlp_user(users), self.mlp_item(items)], 1)))
        return self.out(parts[0] if len(parts) == 1 else torch.cat(parts, 1)).squeeze(1)

    def score_grid(self, users: torch.Tensor) -> torch.Tensor:
        """Logits of every item for each of ``users``: (users, items)."""
        parts = []
        if self.kind in ("gmf", "neumf"):
            p, q = self.gmf_user(users), self.gmf_item.weight
            parts.append((p[:, None, :] * q[None, :, :]).reshape(-1, p.shape[1]))
        if self.kind in ("mlp", "neumf"):
            w_u, w_i, b = _split_first_layer(self.mlp, self.mlp_user.embedding_dim)
            parts.append(_grid_tower(
                self.mlp, self.mlp_user(users) @ w_u.T + b, self.mlp_item.weight @ w_i.T
            ))  # fmt: skip
        x = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
        return self.out(x).reshape(len(users), -1)

    def gmf_factors(self) -> tuple[np.ndarray, np.ndarray, float]:
        """GMF as factors: ``logit(u, i) = (h * p_u) . q_i + b``; (user side, item side, b)."""
        if self.kind != "gmf":
            raise ValueError("only a GMF's scores are a product of factors")
        with torch.no_grad():
            h = self.out.weight[0]
            users = (self.gmf_user.weight * h).numpy().astype(np.float32)
            items = self.gmf_item.weight.numpy().astype(np.float32)
            return users, items, float(self.out.bias[0])


class RatingMLP(nn.Module):
    """``mu + tower([p_u, user features, q_i, item features])``: a rating estimate."""

    def __init__(
        self, n_users: int, n_items: int, factors: int, layers: int,
        user_features: np.ndarray | None, item_features: np.ndarray | None, mean: float,
    ) -> None:  # fmt: skip
        super().__init__()
        self.user = nn.Embedding(n_users, factors)
        self.item = nn.Embedding(n_items, factors)
        nn.init.normal_(self.user.weight, std=0.01)
        nn.init.normal_(self.item.weight, std=0.01)
        self.user_features = _buffer(user_features, n_users)
        self.item_features = _buffer(item_features, n_items)
        width_in = 2 * factors + self.user_features.shape[1] + self.item_features.shape[1]
        self.mlp, width_out = tower(width_in, layers)
        self.out = nn.Linear(width_out, 1)
        self.mean = float(mean)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        x = torch.cat(
            [self.user(users), self.user_features[users], self.item(items),
             self.item_features[items]], 1,
        )  # fmt: skip
        return self.out(self.mlp(x)).squeeze(1) + self.mean

    def score_grid(self, users: torch.Tensor) -> torch.Tensor:
        """Estimates of every item for each of ``users``: (users, items)."""
        user_x = torch.cat([self.user(users), self.user_features[users]], 1)
        item_x = torch.cat([self.item.weight, self.item_features], 1)
        w_u, w_i, b = _split_first_layer(self.mlp, user_x.shape[1])
        hidden = _grid_tower(self.mlp, user_x @ w_u.T + b, item_x @ w_i.T)
        return (self.out(hidden) + self.mean).reshape(len(users), -1)


def _buffer(features: np.ndarray | None, n: int) -> torch.Tensor:
    if features is None:
        return torch.zeros((n, 0))
    return torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))


def sample_negatives(
    interactions: sp.csr_matrix, users: np.ndarray, per_row: int, rng: np.random.Generator
) -> np.ndarray:
    """``per_row`` items per entry of ``users``, uniform over the items that user has no
    interaction with in ``interactions`` (sorted CSR rows); shape ``(len(users), per_row)``.

    Draws all at once, then redraws only the collisions with the user's positives, so the
    cost is a few vectorised passes (users with nearly every item would loop long: they
    are rejected up front)."""
    n_items = interactions.shape[1]
    counts = np.diff(interactions.indptr)
    if len(users) and counts[users].max(initial=0) >= n_items:
        raise ValueError("a user has interacted with every item: no negatives to sample")
    out = rng.integers(0, n_items, size=(len(users), per_row), dtype=np.int64)
    rows = np.repeat(users, per_row).astype(np.int64)
    flat = out.reshape(-1)
    todo = np.arange(len(flat))
    while len(todo):
        hit = _is_positive(interactions, rows[todo], flat[todo])
        todo = todo[hit]
        flat[todo] = rng.integers(0, n_items, size=len(todo), dtype=np.int64)
    return out


def _is_positive(interactions: sp.csr_matrix, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Whether each (row, item) is stored in the sorted-index CSR ``interactions``."""
    indptr, indices = interactions.indptr, interactions.indices
    lo, hi = indptr[rows], indptr[rows + 1]
    # Binary search of ``items`` within each row's slice of ``indices``, vectorised: the
    # keys row * n_items + item are sorted across the whole matrix.
    n_items = interactions.shape[1]
    keys = np.repeat(np.arange(interactions.shape[0], dtype=np.int64), np.diff(indptr))
    keys = keys * n_items + indices
    wanted = rows * n_items + items
    pos = np.searchsorted(keys, wanted)
    found = (pos < hi) & (pos >= lo)
    found[found] = keys[pos[found]] == wanted[found]
    return found


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    seed: int
    threads: int


def train(
    model: nn.Module,
    batches: Callable[[int, np.random.Generator], Iterator[tuple[np.ndarray, ...]]],
    loss_fn: nn.Module,
    config: TrainConfig,
    on_epoch: Callable[[int], None] | None = None,
) -> list[float]:
    """Adam over ``batches(epoch, rng)`` of (users, items, targets); mean loss per epoch.
    Runs inside ``torch_settings`` of the caller (threads, determinism)."""
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    rng = np.random.default_rng([config.seed, 0x4E4346])
    losses = []
    for epoch in range(config.epochs):
        model.train()
        total, n = 0.0, 0
        for users, items, targets in batches(epoch, rng):
            optimiser.zero_grad()
            pred = model(torch.from_numpy(users), torch.from_numpy(items))
            loss = loss_fn(pred, torch.from_numpy(targets))
            loss.backward()
            optimiser.step()
            total += loss.item() * len(users)
            n += len(users)
        losses.append(total / max(n, 1))
        model.eval()
        if on_epoch is not None:
            on_epoch(epoch)
    return losses


def implicit_batches(
    interactions: sp.csr_matrix, negatives: int, batch_size: int
) -> Callable[[int, np.random.Generator], Iterator[tuple[np.ndarray, ...]]]:
    """Per epoch: every positive (label 1) plus ``negatives`` fresh samples each (label 0),
    shuffled, in batches."""
    coo = interactions.tocoo()
    pos_users = coo.row.astype(np.int64)
    pos_items = coo.col.astype(np.int64)

    def batches(epoch: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, ...]]:
        neg = sample_negatives(interactions, pos_users, negatives, rng).reshape(-1)
        users = np.concatenate([pos_users, np.repeat(pos_users, negatives)])
        items = np.concatenate([pos_items, neg])
        labels = np.concatenate(
            [np.ones(len(pos_users), np.float32), np.zeros(len(neg), np.float32)]
        )
        order = rng.permutation(len(users))
        users, items, labels = users[order], items[order], labels[order]
        for lo in range(0, len(users), batch_size):
            hi = lo + batch_size
            yield users[lo:hi], items[lo:hi], labels[lo:hi]

    return batches


def rating_batches(
    users: np.ndarray, items: np.ndarray, ratings: np.ndarray, batch_size: int
) -> Callable[[int, np.random.Generator], Iterator[tuple[np.ndarray, ...]]]:
    users = users.astype(np.int64)
    items = items.astype(np.int64)
    ratings = ratings.astype(np.float32)

    def batches(epoch: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, ...]]:
        order = rng.permutation(len(users))
        for lo in range(0, len(users), batch_size):
            rows = order[lo : lo + batch_size]
            yield users[rows], items[rows], ratings[rows]

    return batches


def score_all(model: nn.Module, users: np.ndarray, n_items: int, threads: int) -> np.ndarray:
    """``model(u, i)`` for every user of ``users`` and every item: float32 (users, items),
    by ``model.score_grid`` in blocks of about ``PAIRS_PER_CHUNK`` pairs."""
    users = np.asarray(users, dtype=np.int64)
    out = np.empty((len(users), n_items), dtype=np.float32)
    step = max(1, PAIRS_PER_CHUNK // max(n_items, 1))
    with torch_settings(None, threads), torch.no_grad():
        model.eval()
        for lo in range(0, len(users), step):
            block = torch.from_numpy(users[lo : lo + step])
            out[lo : lo + len(block)] = model.score_grid(block).numpy()
    return out


def predict_pairs(
    model: nn.Module, users: np.ndarray, items: np.ndarray, threads: int
) -> np.ndarray:
    """``model(u, i)`` for each (user, item) pair, float32."""
    users = torch.from_numpy(np.asarray(users, dtype=np.int64))
    items = torch.from_numpy(np.asarray(items, dtype=np.int64))
    out = np.empty(len(users), dtype=np.float32)
    with torch_settings(None, threads), torch.no_grad():
        model.eval()
        for lo in range(0, len(users), PAIRS_PER_CHUNK):
            hi = lo + PAIRS_PER_CHUNK
            out[lo:hi] = model(users[lo:hi], items[lo:hi]).numpy()
    return out
