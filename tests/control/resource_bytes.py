"""Translated resources as the bytes a proxy would receive, to compare two translations of the
same proxy exactly (shared against alone, before against after a change)."""

from __future__ import annotations

from control.plane.xds.translate.resources import PUSH_ORDER, Resources


def on_the_wire(resources: Resources) -> dict[str, dict[str, bytes]]:
    """type URL -> name -> the resource's deterministic serialization."""
    return {
        t: {n: m.SerializeToString(deterministic=True) for n, m in resources.of(t).items()}
        for t in PUSH_ORDER
    }
