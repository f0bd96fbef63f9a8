"""The per-request facts of Istio's metrics as Envoy's stats loggers record them: one tag.

Each tag of a stats logger costs Envoy about 2,000 instructions per stat per request (the value
is formatted, encoded into a dynamic stat name and joined into the series' name), and an HTTP
request records four stats: with one tag per fact, the loggers were most of what a mizzen
sidecar adds per request over a bare Envoy (`hack/bench/bench_mtls.py`, README "Mutual TLS
between sidecars"). So the facts whose alphabet is closed (constants, the compact peer and
service, response code, flags and gRPC status) travel joined by `|` in the one tag `facts`; the
two principals (certificate URI SANs, any text) keep a tag each. Translation writes the tag
(`facts_format`), the agent splits it back (`split_facts`) before deriving Istio's labels.

No field can hold `|`: the peer is eight Kubernetes names or label values joined by `;` (an
inbound header's claim is first stripped of every character outside that alphabet), the
service a host and two names, a response flag string letters and commas. A value that does not
split into the fields reads as empty fields (labels `unknown`), never as shifted ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

FACTS_TAG: Final = "facts"
SEPARATOR: Final = "|"
FIELDS: Final = (
    "reporter",
    "peer",
    "service",
    "connection_security_policy",
    "response_code",
    "response_flags",
    "grpc_response_status",
)


def facts_format(values: Mapping[str, str]) -> str:
    """The tag's `value_format`: each field's format string (a constant or a command such as
    `%RESPONSE_CODE%`), an absent field empty."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a facts field: {sorted(unknown)}")
    return SEPARATOR.join(values.get(name, "") for name in FIELDS)


def split_facts(labels: Mapping[str, str]) -> dict[str, str]:
    """`labels` with the `facts` tag replaced by its fields (labels without it are returned as
    they are: series recorded by an older translation)."""
    if FACTS_TAG not in labels:
        return dict(labels)
    out = {name: value for name, value in labels.items() if name != FACTS_TAG}
    values = labels[FACTS_TAG].split(SEPARATOR)
    if len(values) == len(FIELDS):
        out.update(zip(FIELDS, values, strict=True))
    return out
