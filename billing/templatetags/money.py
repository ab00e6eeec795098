"""Money in pages: amounts are kept in cents (Decimal for sub-cent prices)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django import template

register = template.Library()


@register.filter
def dollars(cents: int | Decimal | None) -> str:
    """``4900`` -> ``$49.00``; ``Decimal("12.5")`` -> ``$0.13`` (rounded half up to the cent).

    A negative amount (a loss) reads ``-$1.50``."""
    if cents is None:
        return ""
    amount = (Decimal(cents) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"
