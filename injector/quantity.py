"""Kubernetes resource quantities, parsed strictly.

The proxy's resource annotations are emitted exactly as written, so the only job here is to refuse
what the API server would refuse (or would read differently) and to compare a request with its
limit. Digits are ASCII only: Python's Decimal() and int() accept other scripts' digits.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

# Kubernetes' grammar: a number, then a binary-SI, decimal-SI or decimal-exponent suffix.
# No sign: a negative CPU or memory amount is never right for a proxy.
_QUANTITY_RE: Final = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]{1,3})?$"
)
_MULTIPLIERS: Final = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(text: str) -> Decimal:
    """The quantity's value; raises ValueError with a readable message."""
    if len(text) > 64:
        raise ValueError("is too long for a quantity")
    match = _QUANTITY_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi, 1G)")
    suffix = match.group("suffix") or ""
    number = Decimal(match.group("number"))
    if suffix[:1] in ("e", "E"):
        return number.scaleb(int(suffix[1:]))
    return number * _MULTIPLIERS[suffix]
