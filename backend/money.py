"""Amounts as the contract writes them: two decimals, in a string.

Shared by the API's serializers (``price``, ``pwyc_min`` …) and the services' refusal messages ("PWYC amount
must be at least 5.00"), which must spell an amount the same way, so it lives below both.
"""

from decimal import Decimal


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"
