"""Gunther's Universal Scalability Law: throughput against load, from a capacity search's steps.

``X(N) = λ·N / (1 + σ·(N − 1) + κ·N·(N − 1))``: λ is the throughput of one unit of load alone, σ the share of the
work that is serialised (contention: a lock, one database row, a pool too small), κ the cost of keeping the units
coherent with each other (crosstalk: every worker waiting on every other), which makes throughput fall past a peak.
"""


def usl_throughput(load: float, sigma: float, kappa: float, lam: float) -> float:
    """The throughput the law predicts at ``load`` (users, or requests in flight) for the fitted σ, κ and λ."""
    return lam * load / (1.0 + sigma * (load - 1.0) + kappa * load * (load - 1.0))
