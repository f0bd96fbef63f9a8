"""The CA's settings, parsed once at the edge (the CLI) and passed down frozen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from control.identity.keys import RSA_MAX_BITS, RSA_MIN_BITS, KeySpec
from control.plane.ca.signer import SigningPolicy


class CaSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Local mode: the self-signed CA and the token issuer's key live here.
    ca_dir: Path | None = None
    plugin_ca_dir: Path | None = None
    # Kubernetes mode: the CA in Secrets of `namespace`, callers checked by TokenReview.
    kube: bool = False
    namespace: str = Field(default="mizzen-system", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    key_type: Literal["ecdsa", "rsa"] = "ecdsa"
    rsa_bits: int = Field(default=RSA_MIN_BITS, ge=RSA_MIN_BITS, le=RSA_MAX_BITS)
    workload_cert_ttl: timedelta = timedelta(hours=24)
    max_workload_cert_ttl: timedelta = timedelta(days=90)
    trust_domain: str = Field(default="cluster.local", pattern=r"^[a-z0-9._-]{1,255}$")
    token_audience: str = Field(default="mizzen-ca", min_length=1, max_length=256)
    # The secure port's certificate names: the Service's forms, then these addresses.
    service_name: str = "mizzen"
    cluster_domain: str = "cluster.local"
    advertise_addresses: tuple[str, ...] = ()
    reload_interval: float = Field(default=5.0, gt=0)
    review_cache_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _mode(self) -> CaSettings:
        if not self.kube and self.ca_dir is None:
            raise ValueError("--ca-dir is required without --kube (local mode)")
        if self.workload_cert_ttl <= timedelta(0):
            raise ValueError("--workload-cert-ttl must be > 0")
        if self.max_workload_cert_ttl < self.workload_cert_ttl:
            raise ValueError("--max-workload-cert-ttl must be at least --workload-cert-ttl")
        return self

    @property
    def key_spec(self) -> KeySpec:
        if self.key_type == "rsa":
            return KeySpec("rsa", rsa_bits=self.rsa_bits)
        return KeySpec("ecdsa")

    @property
    def policy(self) -> SigningPolicy:
        return SigningPolicy(default_ttl=self.workload_cert_ttl, max_ttl=self.max_workload_cert_ttl)
