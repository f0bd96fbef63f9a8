"""A test CA behind the leader's seams (`RootBundleSource`, `ServingCertIssuer`): real keys and
certificates made with `cryptography`, standing in for the mesh CA until it is wired."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from control.plane.leader.seams import IssuedCertificate
from webhook import devcerts


class TestCA:
    __test__ = False  # not a test class

    def __init__(self, directory: Path) -> None:
        devcerts.issue(directory, ["test-ca-bootstrap"])
        self.cert, self.key = devcerts.load_ca(directory)
        self.issued = 0
        self.failing = False

    def root_bundle(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def issue(self, dns_names: Sequence[str], lifetime: timedelta) -> IssuedCertificate:
        if self.failing:
            raise RuntimeError("the CA is not ready")
        self.issued += 1
        cert, key = devcerts.issue_serving(
            self.cert, self.key, dns_names, (), now=datetime.now(UTC), validity=lifetime
        )
        return IssuedCertificate(cert, key)


class SwitchableRoots:
    """The roots of whichever CA is current (a root rotation is a switch)."""

    def __init__(self, ca: TestCA) -> None:
        self.ca = ca

    def root_bundle(self) -> str:
        return self.ca.root_bundle()
