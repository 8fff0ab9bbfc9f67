"""recbench's numba ALS: kernels against numpy closed forms, model invariants, adapters."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from recbench_adapters.recbench import ALS
from recbench_adapters.recbench import ImplicitALS as ImplicitALSAdapter

from bench.data.model import Dataset, Features, Ratings, TrainSet
from bench.execution.registry import get as get_adapter
from bench.execution.threads import limited
from bench.execution.trial import TrialSpec, run_trial
from bench.kernels import als as kernels
from bench.models.als import (
    CSR,
    ExplicitALS,
    ImplicitALS,
    Interactions,
    validation_ndcg,
)
from bench.splitting.splits import SplitSpec


def random_ratings(n_users: int = 60, n_items: int = 40, density: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    values = rng.integers(1, 6, size=len(users)).astype(np.float32)
    return Ratings(
        users.astype(np.int32), items.astype(np.int32), values, None, n_users, n_items
    )


def dense(csr: CSR) -> np.ndarray:
    return sp.csr_matrix(
        (csr.values, csr.indices, csr.indptr), shape=(csr.n_rows, csr.n_cols)
    ).toarray()


# -- kernels -------------------------------------------------------------------------------
def test_build_csr_matches_scipy() -> None:
    r = random_ratings()
    csr = CSR.from_coo(r.users, r.items, r.ratings, (r.n_users, r.n_items))
    np.testing.assert_array_equal(dense(csr), r.to_csr().toarray())


@pytest.mark.parametrize("with_prior", [False, True])
def test_explicit_half_step_is_the_closed_form_least_squares(with_prior: bool) -> None:
    r = random_ratings(n_users=30, n_items=25, seed=1)
    k, mu = 5, 3.1
    rng = np.random.default_rng(2)
    item_factors = rng.standard_normal((r.n_items, k)).astype(np.float32)
    item_bias = rng.standard_normal(r.n_items).astype(np.float32) * 0.3
    reg_f = rng.uniform(0.5, 2.0, r.n_users).astype(np.float32)
    reg_b = rng.uniform(0.5, 2.0, r.n_users).astype(np.float32)
    prior = (
        rng.standard_normal((r.n_users, k)).astype(np.float32)
        if with_prior
        else np.zeros((0, k), dtype=np.float32)
    )
    data = Interactions.from_ratings(r).by_user
    factors = np.zeros((r.n_users, k), dtype=np.float32)
    bias = np.zeros(r.n_users, dtype=np.float32)
    kernels.explicit_halfstep(
        data.indptr, data.indices, data.values, item_factors, item_bias, np.float32(mu),
        reg_f, reg_b, prior, factors, bias,
    )  # fmt: skip

    for u in range(r.n_users):  # numpy reference: ridge regression over z = [b_u, p_u]
        rows = r.users == u
        items = r.items[rows].astype(np.int64)
        design = np.hstack([np.ones((len(items), 1)), item_factors[items]]).astype(np.float64)
        target = r.ratings[rows] - mu - item_bias[items]
        penalty = np.diag(np.r_[reg_b[u], np.full(k, reg_f[u])])
        rhs = design.T @ target
        if with_prior:
            rhs[1:] += reg_f[u] * prior[u]
        z = np.linalg.solve(design.T @ design + penalty, rhs)
        np.testing.assert_allclose(bias[u], z[0], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(factors[u], z[1:], rtol=1e-3, atol=1e-4)


def test_explicit_conjugate_gradient_converges_to_the_exact_half_step() -> None:
    r = random_ratings(n_users=40, n_items=30, seed=11)
    k = 6
    rng = np.random.default_rng(12)
    items = rng.standard_normal((r.n_items, k)).astype(np.float32)
    item_bias = rng.standard_normal(r.n_items).astype(np.float32) * 0.3
    reg = np.full(r.n_users, 0.5, dtype=np.float32)
    prior = rng.standard_normal((r.n_users, k)).astype(np.float32)
    rows = Interactions.from_ratings(r).by_user
    common = (rows.indptr, rows.indices, rows.values, items, item_bias, np.float32(3.0), reg,
              reg, prior)  # fmt: skip
    exact = np.zeros((r.n_users, k), dtype=np.float32), np.zeros(r.n_users, dtype=np.float32)
    kernels.explicit_halfstep(*common, *exact)
    errors = []
    for steps in (1, 3, k + 1):  # k + 1 unknowns per row: k + 1 steps are exact
        cg = np.zeros((r.n_users, k), dtype=np.float32), np.zeros(r.n_users, dtype=np.float32)
        kernels.explicit_cg_halfstep(*common, *cg, steps)
        errors.append(max(np.abs(cg[0] - exact[0]).max(), np.abs(cg[1] - exact[1]).max()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-3 * np.abs(exact[0]).max()


def implicit_system(r: Ratings, k: int, reg: float, seed: int = 3):
    rng = np.random.default_rng(seed)
    item_factors = (rng.standard_normal((r.n_items, k)) * 0.3).astype(np.float32)
    data = Interactions.from_ratings(r, 1.0 + 2.0 * r.ratings).by_user
    gram = kernels.gram(item_factors, np.float32(reg))
    return data, gram, item_factors


def test_gram_is_yty_plus_reg() -> None:
    y = np.random.default_rng(0).standard_normal((1000, 7)).astype(np.float32)
    np.testing.assert_allclose(
        kernels.gram(y, np.float32(0.5)), y.T @ y + 0.5 * np.eye(7), rtol=1e-4, atol=1e-3
    )


def test_implicit_cholesky_solves_the_hkv_normal_equations() -> None:
    r = random_ratings(seed=4)
    k, reg = 6, 0.1
    data, gram, y = implicit_system(r, k, reg)
    x = np.zeros((r.n_users, k), dtype=np.float32)
    kernels.implicit_cholesky_halfstep(data.indptr, data.indices, data.values, gram, y, x)
    c = dense(data).astype(np.float64)
    for u in range(r.n_users):
        cu = np.where(c[u] > 0, c[u], 1.0)  # confidence 1 and preference 0 off the entries
        a = y.T.astype(np.float64) @ (cu[:, None] * y) + reg * np.eye(k)
        b = y.T @ (cu * (c[u] > 0))
        np.testing.assert_allclose(x[u], np.linalg.solve(a, b), rtol=2e-3, atol=2e-4)


def test_conjugate_gradient_converges_to_the_cholesky_solution() -> None:
    r = random_ratings(seed=5)
    k = 8
    data, gram, y = implicit_system(r, k, reg=0.1)
    exact = np.zeros((r.n_users, k), dtype=np.float32)
    kernels.implicit_cholesky_halfstep(data.indptr, data.indices, data.values, gram, y, exact)
    errors = []
    for steps in (1, 3, k):  # k steps solve a k x k SPD system up to rounding
        x = np.zeros((r.n_users, k), dtype=np.float32)
        kernels.implicit_cg_halfstep(data.indptr, data.indices, data.values, gram, y, x, steps)
        errors.append(np.abs(x - exact).max())
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-3 * np.abs(exact).max()


@pytest.mark.parametrize("gather_bytes", [kernels.GATHER_BYTES, 0])
def test_gathered_and_direct_rows_solve_the_same_system(gather_bytes: int) -> None:
    # gather_bytes=0: no row fits the contiguous buffer, every pass reads the factor matrix
    n_items = 3000
    rng = np.random.default_rng(13)
    users = np.r_[np.zeros(n_items), np.ones(50)].astype(np.int32)
    items = np.r_[np.arange(n_items), rng.choice(n_items, 50, replace=False)].astype(np.int32)
    values = rng.integers(1, 6, len(users)).astype(np.float32)
    r = Ratings(users, items, values, None, 2, n_items)
    k = 4
    item_factors = (rng.standard_normal((n_items, k)) * 0.3).astype(np.float32)
    rows = Interactions.from_ratings(r, 1.0 + values).by_user
    gram = kernels.gram(item_factors, np.float32(0.1))
    exact = np.zeros((2, k), dtype=np.float32)
    kernels.implicit_cholesky_halfstep(rows.indptr, rows.indices, rows.values, gram,
                                       item_factors, exact)  # fmt: skip
    cg = np.zeros((2, k), dtype=np.float32)
    kernels.implicit_cg_halfstep(rows.indptr, rows.indices, rows.values, gram, item_factors,
                                 cg, k, gather_bytes)  # fmt: skip
    np.testing.assert_allclose(cg, exact, rtol=1e-3, atol=1e-4)

    model = ExplicitALS(factors=k, iterations=3, solver="cholesky").fit(r)
    data = Interactions.from_ratings(r).by_user
    common = (data.indptr, data.indices, data.values, model.item_factors_, model.item_bias_,
              np.float32(model.global_mean_), model.user_reg_f_, model.user_reg_b_,
              np.zeros((0, k), dtype=np.float32))  # fmt: skip
    exact = np.zeros((2, k), dtype=np.float32), np.zeros(2, dtype=np.float32)
    kernels.explicit_halfstep(*common, *exact)
    cg = np.zeros((2, k), dtype=np.float32), np.zeros(2, dtype=np.float32)
    kernels.explicit_cg_halfstep(*common, *cg, 2 * (k + 1), gather_bytes)
    np.testing.assert_allclose(cg[0], exact[0], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(cg[1], exact[1], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("gather_bytes", [kernels.GATHER_BYTES, 4 * 8 * 40])
def test_cg_half_steps_are_bitwise_repeatable_at_any_thread_count(gather_bytes: int) -> None:
    # A scratch buffer shared by two threads shows as repeated calls that disagree: run each
    # kernel many times at 2 threads on rows of very different lengths (some too long for
    # the small gather buffer) and require every result to equal the 1-thread one.
    rng = np.random.default_rng(21)
    n_users, n_items, k = 900, 400, 8
    counts = np.minimum(rng.zipf(1.6, n_users) + 2, n_items)
    users = np.repeat(np.arange(n_users), counts).astype(np.int32)
    items = np.concatenate([rng.choice(n_items, c, replace=False) for c in counts])
    values = rng.integers(1, 6, len(users)).astype(np.float32)
    r = Ratings(users, items.astype(np.int32), values, None, n_users, n_items)
    rows = Interactions.from_ratings(r, 1.0 + values).by_user
    y = (rng.standard_normal((n_items, k)) * 0.3).astype(np.float32)
    x0 = (rng.standard_normal((n_users, k)) * 0.3).astype(np.float32)
    gram = kernels.gram(y, np.float32(0.1))
    no_prior = np.zeros((0, k), dtype=np.float32)
    reg = np.full(n_users, 0.1, dtype=np.float32)
    item_bias = (rng.standard_normal(n_items) * 0.1).astype(np.float32)

    def both(threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with limited(threads, blas=False):
            imp = x0.copy()
            kernels.implicit_cg_halfstep(rows.indptr, rows.indices, rows.values, gram, y, imp, 3,
                                         gather_bytes)  # fmt: skip
            exp, bias = x0.copy(), np.zeros(n_users, dtype=np.float32)
            kernels.explicit_cg_halfstep(rows.indptr, rows.indices, values_by_row, y, item_bias,
                                         np.float32(3.5), reg, reg, no_prior, exp, bias, 3,
                                         gather_bytes)  # fmt: skip
        return imp, exp, bias

    values_by_row = Interactions.from_ratings(r).by_user.values
    reference = both(1)
    for _ in range(25):
        for got, want in zip(both(2), reference, strict=True):
            np.testing.assert_array_equal(got, want)


# -- models ---------------------------------------------------------------------------------
def genre_features(n_items: int, n_genres: int = 4, seed: int = 0) -> Features:
    rng = np.random.default_rng(seed)
    m = (rng.random((n_items, n_genres)) < 0.4).astype(np.float32)
    m[np.arange(n_items), rng.integers(0, n_genres, n_items)] = 1.0  # every item has one
    return Features(sp.csr_matrix(m), tuple(f"genre={g}" for g in range(n_genres)))


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
@pytest.mark.parametrize("genre_prior", [False, True])
def test_explicit_training_loss_never_increases(genre_prior: bool, solver: str) -> None:
    r = random_ratings(n_users=80, n_items=50, seed=6)
    model = ExplicitALS(
        factors=6, iterations=12, reg_factors=0.05, reg_bias=1.0, genre_prior=genre_prior,
        solver=solver,
    ).fit(r, genre_features(r.n_items) if genre_prior else None, track_loss=True)
    loss = np.array(model.loss_history_)
    assert np.all(np.diff(loss) <= 1e-5 * loss[:-1])
    assert loss[-1] < 0.8 * loss[0]


def test_implicit_exact_training_loss_never_increases() -> None:
    r = random_ratings(n_users=80, n_items=50, seed=7)
    model = ImplicitALS(factors=6, iterations=10, solver="cholesky").fit(r, track_loss=True)
    loss = np.array(model.loss_history_)
    assert np.all(np.diff(loss) <= 1e-5 * loss[:-1])


def test_fold_in_of_a_training_user_reproduces_its_factors() -> None:
    r = random_ratings(n_users=80, n_items=50, seed=8)
    model = ExplicitALS(factors=4, iterations=10, reg_factors=0.1, reg_bias=1.0, solver="cholesky")
    model.fit(r)
    for u in (0, 17, 42):
        rows = r.users == u
        vector = model.fold_in(r.items[rows], r.ratings[rows])
        np.testing.assert_allclose(vector, model.user_vectors([u])[0], rtol=1e-3, atol=1e-4)

    # implicit mode keeps implicit's order (users, then items): the users lag one item step
    imp = ImplicitALS(factors=4, iterations=30, solver="cholesky").fit(r)
    for u in (5, 33):
        rows = r.users == u
        folded, fitted = imp.fold_in(r.items[rows], r.ratings[rows]), imp.user_factors_[u]
        cosine = folded @ fitted / np.linalg.norm(folded) / np.linalg.norm(fitted)
        assert cosine > 0.999
        assert np.linalg.norm(folded) == pytest.approx(np.linalg.norm(fitted), rel=0.03)


@pytest.mark.parametrize("model_cls", [ExplicitALS, ImplicitALS])
def test_same_seed_same_factors_whatever_the_thread_count(model_cls: type) -> None:
    r = random_ratings(n_users=300, n_items=120, density=0.1, seed=9)
    a = model_cls(factors=8, iterations=4, seed=3, threads=1).fit(r)
    b = model_cls(factors=8, iterations=4, seed=3, threads=2).fit(r)
    c = model_cls(factors=8, iterations=4, seed=4, threads=1).fit(r)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_early_stopping_keeps_the_best_validation_iteration() -> None:
    # rank-2 structure plus noise; 12 weakly regularised factors learn the structure within a
    # few iterations, then the noise, so validation RMSE turns up and training stops early
    rng = np.random.default_rng(10)
    r = random_ratings(n_users=200, n_items=80, density=0.5, seed=10)
    u, v = rng.standard_normal((200, 2)), rng.standard_normal((80, 2))
    signal = 3.0 + (u[r.users] * v[r.items]).sum(1) + rng.normal(0, 0.8, len(r))
    r = Ratings(r.users, r.items, signal.astype(np.float32), None, r.n_users, r.n_items)
    is_val = rng.random(len(r)) < 0.2
    fit, val = r.take(~is_val), r.take(is_val)
    model = ExplicitALS(factors=12, iterations=40, reg_factors=0.02, reg_bias=0.1, patience=2)
    model.fit(fit, validation=val)
    assert model.best_iteration_ == int(np.argmin(model.validation_rmse_)) + 1
    assert len(model.validation_rmse_) < 40
    pred = model.predict(val.users, val.items)
    final = np.sqrt(np.mean((pred - val.ratings) ** 2))
    assert final == pytest.approx(min(model.validation_rmse_), rel=1e-5)


def test_validation_ndcg_matches_a_hand_computed_case() -> None:
    # 2 users x 4 items.  User 0 has seen item 0; its ranking of the rest is 1, 2, 3 and its
    # held-out items are 2 and 3: DCG@2 = 1/log2(3), ideal = 1 + 1/log2(3).  User 1 has
    # nothing held out and does not count; a user with no validation rows never does.
    scores = np.array([[9.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    held_out = sp.csr_matrix(np.array([[0, 0, 1, 1], [0, 0, 0, 0]], dtype=np.float32))
    value = validation_ndcg(lambda users: scores[users], seen, held_out, k=2)
    expected = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert value == pytest.approx(expected)


def test_implicit_early_stopping_keeps_the_best_validation_iteration(ml100k: Dataset) -> None:
    # 64 factors with light regularisation overfit ML-100k within a few iterations, so the
    # held-out NDCG peaks early and the fit stops
    r = ml100k.ratings
    is_val = np.random.default_rng(0).random(len(r)) < 0.1
    fit_rows, val_rows = r.take(~is_val), r.take(is_val)
    held_out = sp.csr_matrix(
        (np.ones(len(val_rows)), (val_rows.users, val_rows.items)), shape=(r.n_users, r.n_items)
    )
    model = ImplicitALS(factors=64, iterations=40, regularization=0.01, patience=2)
    model.fit(fit_rows, validation=held_out)
    ndcg = model.validation_ndcg_
    assert model.best_iteration_ == int(np.argmax(ndcg)) + 1
    assert len(ndcg) < 40 and len(ndcg) == model.best_iteration_ + 2
    # the kept factors are the best iteration's: scoring them again gives its NDCG
    seen = model.prepare(fit_rows).by_user.to_scipy()
    assert validation_ndcg(model.score, seen, held_out, 10) == pytest.approx(max(ndcg), abs=1e-9)


# settings that overfit within 30 iterations on ML-100k, so early stopping has work to do
OVERFITTING = {
    "recbench.ALS": {"factors": 32, "reg_factors": 1.25},
    "recbench.ImplicitALS": {"factors": 64, "regularization": 0.1},
}


@pytest.mark.parametrize("adapter", ["recbench.ALS", "recbench.ImplicitALS"])
def test_early_stopping_refits_with_the_chosen_iterations_and_records_them(
    ml100k: Dataset, adapter: str
) -> None:
    split_spec = SplitSpec("random", test_fraction=0.2, seed=0)
    params = {**OVERFITTING[adapter], "iterations": 30, "early_stopping": True, "patience": 2}
    record, _ = run_trial(TrialSpec("ml-100k", split_spec, 0, adapter, params), None)
    assert record["status"] == "ok", record["error"]
    chosen = record["fitted"]["best_iteration"]
    assert 1 <= chosen < 30
    fixed = {**OVERFITTING[adapter], "iterations": chosen}
    plain, _ = run_trial(TrialSpec("ml-100k", split_spec, 0, adapter, fixed), None)
    assert "fitted" not in plain
    # the refit on all train rows is an ordinary fit with the chosen count
    assert record["metrics"] == pytest.approx(plain["metrics"], abs=1e-9)


# -- adapters on ML-100k --------------------------------------------------------------------
def split(ds: Dataset, seed: int = 0) -> tuple[TrainSet, Ratings]:
    is_test = np.random.default_rng(seed).random(len(ds.ratings)) < 0.2
    train = TrainSet(ds.ratings.take(~is_test), ds.rating_scale, ds.item_features)
    return train, ds.ratings.take(is_test)


@pytest.mark.slow
def test_explicit_adapter_beats_the_bias_baseline_on_ml100k(ml100k: Dataset) -> None:
    train, test = split(ml100k)
    adapter = ALS(threads=2).fit(train)
    pred = adapter.predict(test.users, test.items)
    assert pred.dtype == np.float32
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    rmse = float(np.sqrt(np.mean((pred - test.ratings) ** 2)))
    assert rmse < 0.93  # Surprise BaselineOnly: 0.946, SVD 0.939 on this protocol
    scores = adapter.score(np.array([0, 1], dtype=np.int32))
    assert scores.shape == (2, ml100k.n_items) and scores.dtype == np.float32


@pytest.mark.slow
def test_explicit_adapter_handles_cold_users_and_items(ml100k: Dataset) -> None:
    train, _ = split(ml100k)
    cold_user, cold_item = 0, 0
    keep = (train.ratings.users != cold_user) & (train.ratings.items != cold_item)
    train = TrainSet(train.ratings.take(keep), train.rating_scale, train.item_features)
    plain = ALS(iterations=5).fit(train)
    genre = get_adapter("recbench.GenreALS")(iterations=5).fit(train)
    # plain: the cold item is the global mean plus the user bias; never an exception
    assert np.isfinite(plain.predict(np.array([cold_user, 5]), np.array([3, cold_item]))).all()
    # the genre prior gives the cold item a vector of its own, so users rank it differently
    assert np.abs(genre.model_.item_factors_[cold_item]).sum() > 0
    cold_scores = genre.score(np.arange(50, dtype=np.int32))[:, cold_item]
    assert np.unique(cold_scores).size > 1

    rows = ml100k.ratings.users == cold_user
    vector = plain.fold_in(ml100k.ratings.items[rows][:10], ml100k.ratings.ratings[rows][:10])
    assert vector.shape == (plain.factors + 1,)
    folded = plain.score_folded(vector)
    assert folded.shape == (1, ml100k.n_items)
    assert plain.predict_folded(vector, np.array([1, 2])).shape == (2,)


@pytest.mark.slow
def test_implicit_adapter_ranks_better_than_popularity(ml100k: Dataset) -> None:
    train, test = split(ml100k)
    adapter = ImplicitALSAdapter(factors=32, iterations=10, threads=2).fit(train)
    users = np.unique(test.users).astype(np.int32)
    scores = adapter.score(users)
    seen = train.ratings.to_csr()[users].toarray() > 0
    scores[seen] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    truth = test.to_csr()[users].toarray() > 0
    hits_model = truth[np.arange(len(users))[:, None], top].sum()
    popularity = np.where(seen, -np.inf, adapter.popularity_[None, :])
    top_pop = np.argsort(-popularity, axis=1, kind="stable")[:, :10]
    hits_pop = truth[np.arange(len(users))[:, None], top_pop].sum()
    assert hits_model > 1.2 * hits_pop
    vector = adapter.fold_in(np.array([1, 2, 3]), np.array([5.0, 4.0, 3.0]))
    assert adapter.score_folded(vector).shape == (1, ml100k.n_items)
