"""economics/tokens.py: prices by the token, cost per million requests, request latency."""

from __future__ import annotations

import numpy as np
import pytest

from harness.economics import tokens
from harness.economics.settings import parse_token_prices
from harness.errors import SpecError
from harness.spec_types import TokenPrices


def test_prices_read_from_metadata():
    assert parse_token_prices({"input": 0.6, "output": 2}) == TokenPrices(0.6, 2.0)
    assert parse_token_prices({"output": 2}) == TokenPrices(0.0, 2.0)
    assert parse_token_prices(None) is None
    assert TokenPrices(2.0, 8.0).usd(1000, 60) == pytest.approx((2.0 * 1000 + 8.0 * 60) / 1e6)


@pytest.mark.parametrize("bad", [{"input": -1}, {"input": "cheap"}, {"inptu": 1}, 3, {}])
def test_bad_prices_name_the_field(bad):
    with pytest.raises(SpecError) as info:
        parse_token_prices(bad, "suites/s.yaml", "teacher.metadata.usd_per_million_tokens")
    assert str(info.value).startswith("suites/s.yaml: teacher.metadata.usd_per_million_tokens")


def test_cost_per_million_requests_is_the_mean_request_at_the_prices():
    cost = tokens.cost_per_million_requests(TokenPrices(0.6, 2.4), np.array([100, 300]),
                                            np.array([10, 30]))
    # mean 200 input and 20 output tokens: 0.6 * 200 + 2.4 * 20 = 168 USD per million requests
    assert cost == pytest.approx(168.0)
    assert tokens.cost_per_million_requests(TokenPrices(1.0, 1.0), None, None) is None


def test_request_latency_percentiles_match_numpy():
    lat = np.array([0.10, 0.12, 0.11, 0.50, 0.09, 0.13, 0.10, 2.0])
    got = tokens.request_latency(lat)
    assert got is not None and got["kind"] == "request latency" and got["n"] == 8
    assert got["p50_s"] == pytest.approx(np.percentile(lat, 50))
    assert got["p99_s"] == pytest.approx(np.percentile(lat, 99))
    assert tokens.request_latency(None) is None
    assert tokens.request_latency(np.array([np.nan])) is None
