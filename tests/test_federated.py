"""FederatedMF: seeded runs repeat, more clients per round come closer to centralised MF,
and the traffic it records is what the protocol sends."""

from __future__ import annotations

import numpy as np
import pytest
from recbench_adapters.recbench import FederatedMF
from recbench_adapters.surprise import SVD as SurpriseSVD

from bench.data.model import Dataset, TrainSet
from bench.errors import UserError


def split(data: Dataset) -> tuple[TrainSet, object]:
    test = np.random.default_rng(0).random(len(data.ratings)) < 0.2
    train = data.ratings.take(np.flatnonzero(~test))
    return TrainSet(train, data.rating_scale), data.ratings.take(np.flatnonzero(test))


def rmse(model, test) -> float:
    return float(np.sqrt(np.mean((model.predict(test.users, test.items) - test.ratings) ** 2)))


def test_same_seed_same_model_other_seed_other_model(ml100k: Dataset) -> None:
    train, _ = split(ml100k)
    fits = [FederatedMF(rounds=10, seed=s).fit(train) for s in (5, 5, 6)]
    for _ in range(2):  # and again: nothing carries over between fits
        fits.append(FederatedMF(rounds=10, seed=5).fit(train))
    users = np.arange(train.n_users)
    first = fits[0].score(users)
    for other in (fits[1], fits[3], fits[4]):
        np.testing.assert_array_equal(other.score(users), first)
        assert other.fitted_info() == fits[0].fitted_info()
    assert not np.array_equal(fits[2].score(users), first)


def test_more_clients_per_round_come_closer_to_centralised_mf(ml100k: Dataset) -> None:
    """Same rounds and local epochs; centralised SGD MF (Surprise SVD) is the reference."""
    train, test = split(ml100k)
    centralised = rmse(SurpriseSVD().fit(train), test)
    federated = [rmse(FederatedMF(rounds=40, fraction=f).fit(train), test)
                 for f in (0.02, 0.1, 0.5)]  # fmt: skip
    assert centralised < federated[2] < federated[1] < federated[0]
    assert federated[2] - centralised < 0.03  # the cost of privacy, at half the clients


def test_traffic_is_what_every_client_sends_when_all_take_part(ml100k: Dataset) -> None:
    train, _ = split(ml100k)
    factors, rounds = 8, 3
    model = FederatedMF(factors=factors, rounds=rounds, fraction=1.0).fit(train)
    info = model.fitted_info()
    clients = int((train.ratings.user_counts() > 0).sum())
    per_rating = (factors + 1) * 4 + 4  # float32 factor and bias changes, int32 item code
    assert info["rounds"] == rounds and info["clients_per_round"] == info["clients"] == clients
    assert info["upload_bytes_total"] == rounds * len(train.ratings) * per_rating
    assert info["upload_bytes_per_client_round"] == pytest.approx(
        len(train.ratings) * per_rating / clients, abs=0.1
    )
    assert info["download_bytes_per_client_round"] == train.n_items * (factors + 1) * 4
    # A tenth of the clients per round: a tenth of the rounds' uploads, rounded up.
    tenth = FederatedMF(factors=factors, rounds=rounds, fraction=0.1).fit(train).fitted_info()
    assert tenth["clients_per_round"] == int(np.ceil(0.1 * clients))


def test_bad_fraction_is_a_user_error() -> None:
    with pytest.raises(UserError, match="fraction"):
        FederatedMF(fraction=0.0)
