"""Token economics: what a model costs when it is priced by the token, and how long its
requests take when it is served behind an endpoint.

A model's ``metadata.usd_per_million_tokens: {input, output}`` (:attr:`ModelSpec.prices
<harness.spec_types.ModelSpec.prices>`, read when the suite loads) prices its measured usage (the
server's ``usage``, or the tokenizer's counts for a local model): the cost per million
*requests* is the mean tokens of one request, at the suite's real prompt and answer lengths,
times those prices. An endpoint's latency is the request latency it measured, one per answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.spec_types import TokenPrices

PERCENTILES = (50.0, 90.0, 99.0)


def cost_per_million_requests(prices: TokenPrices, input_tokens: np.ndarray | None,
                              output_tokens: np.ndarray | None) -> float | None:
    """USD per million requests at the mean measured tokens per request (None without usage)."""
    if input_tokens is None and output_tokens is None:
        return None
    mean_in = float(np.mean(input_tokens)) if input_tokens is not None and len(input_tokens) else 0.0
    mean_out = (float(np.mean(output_tokens))
                if output_tokens is not None and len(output_tokens) else 0.0)
    # (USD per 1e6 tokens) x (tokens per request) x 1e6 requests / 1e6 = USD per 1e6 requests.
    return prices.input * mean_in + prices.output * mean_out


def request_latency(latency_s: np.ndarray | None) -> dict[str, Any] | None:
    """p50 / p90 / p99 (seconds) of an endpoint's measured request latencies, or None."""
    if latency_s is None:
        return None
    values = np.asarray(latency_s, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if not len(values):
        return None
    p50, p90, p99 = (float(np.percentile(values, q)) for q in PERCENTILES)
    return {"kind": "request latency", "n": int(len(values)), "p50_s": p50, "p90_s": p90,
            "p99_s": p99}
