"""YAML -> model -> YAML: a valid object survives parsing and dumping unchanged."""

from __future__ import annotations

import json

import pytest
import yaml

from control.api import parse_resource
from control.api.models.virtual_service import VirtualService
from control.api.registry import SPEC_MODELS
from tests.api.corpus import Case, valid_cases

_PROTO_NAMES = {
    "dr-snake-case-names": {
        "host": "ratings",
        "trafficPolicy": {
            "connectionPool": {
                "tcp": {"maxConnections": 10, "connectTimeout": "2s"},
                "http": {"http1MaxPendingRequests": 5},
            },
            "outlierDetection": {"consecutive5xxErrors": 3, "baseEjectionTime": "30s"},
        },
    },
    "ra-snake-case-jwks-uri": {
        "jwtRules": [{"issuer": "a.example", "jwksUri": "https://a.example/keys"}]
    },
}


@pytest.mark.parametrize("case", valid_cases(), ids=lambda c: f"{c.file}:{c.name}")
def test_round_trip(case: Case) -> None:
    resource = parse_resource(case.obj)
    dumped = resource.to_dict()
    # JSON is the wire form: map keys are strings there (portLevelMtls: {8080: ...} in YAML).
    if case.name in _PROTO_NAMES:  # written with the proto names, dumped with the JSON names
        assert dumped["spec"] == _PROTO_NAMES[case.name]
    else:
        assert dumped["spec"] == json.loads(json.dumps(case.obj.get("spec", {})))
    assert dumped["apiVersion"] == case.obj["apiVersion"]
    assert dumped["metadata"]["name"] == case.obj["metadata"]["name"]
    # Through YAML text and back, and the model is the same again.
    reloaded = yaml.safe_load(yaml.safe_dump(dumped))
    assert parse_resource(reloaded).spec == resource.spec


def test_models_are_frozen_and_typed() -> None:
    spec = VirtualService.model_validate(
        {"hosts": ["a"], "http": [{"route": [{"destination": {"host": "a"}, "weight": 5}]}]}
    )
    assert spec.http[0].route[0].destination is not None
    assert spec.http[0].route[0].weight == 5
    with pytest.raises(Exception, match="frozen"):
        spec.hosts = ("b",)  # type: ignore[misc]


def test_every_kind_has_a_model() -> None:
    assert set(SPEC_MODELS) == {
        "VirtualService", "DestinationRule", "ServiceEntry", "Sidecar", "Gateway",
        "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication",
    }  # fmt: skip
