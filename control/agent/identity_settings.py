"""The agent's identity settings: where the token, the root and the SDS socket are, which CA
to ask, which key to make. Parsed once from the pod's environment (names from
`injector.contract`, and Istio's `proxyMetadata` variables) and the flags.

Identity is on when the pod has a token (`MIZZEN_TOKEN_PATH` set, as the injector always does),
unless `--identity off` (plaintext xDS to a control plane without a CA).
Key: ECDSA P-256 by default. Istio's agent defaults to RSA 2048 and switches to ECDSA with
`ECC_SIGNATURE_ALGORITHM=ECDSA`; mizzen defaults the other way (smaller, faster keys, as Linkerd)
and honours `ECC_SIGNATURE_ALGORITHM=RSA` (with `WORKLOAD_RSA_KEY_SIZE`, default 2048) and
`ECC_CURVE=P384`. `SECRET_TTL` (Istio's name, a Go duration) asks for a lifetime; `CA_ADDR`
(Istio's name; the injector sets it to the control plane's CA port, 15013) points at the CA,
else the discovery address is asked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from control.api.duration import DurationError, parse_millis
from control.identity.keys import RSA_MAX_BITS, RSA_MIN_BITS, KeySpec
from control.identity.spiffe import IdentityError, SpiffeId
from injector import contract

ENV_KEY_ALGORITHM: Final = "ECC_SIGNATURE_ALGORITHM"
ENV_CURVE: Final = "ECC_CURVE"
ENV_RSA_BITS: Final = "WORKLOAD_RSA_KEY_SIZE"
ENV_SECRET_TTL: Final = "SECRET_TTL"  # noqa: S105 (a variable name)
ENV_CA_ADDRESS: Final = contract.ENV_CA_ADDRESS
DEFAULT_CERT_TTL: Final = 24 * 3600
_HOST: Final = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


class IdentitySettingsError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IdentityOptions(_Frozen):
    """The command line's part (flags)."""

    mode: Literal["auto", "on", "off"] = "auto"
    ca_address: str | None = None  # host:port; None: CA_ADDR, else the discovery address
    cert_ttl: int | None = Field(default=None, gt=0)  # seconds; None: SECRET_TTL, else 24 h
    xds_tls: bool = True  # False: xDS stays plaintext while identity is on
    retry_initial: float = Field(default=1.0, gt=0)
    retry_max: float = Field(default=30.0, gt=0)
    root_poll_interval: float = Field(default=5.0, gt=0)
    ca_timeout: float = Field(default=10.0, gt=0)


class IdentitySettings(_Frozen):
    spiffe_id: str
    token_path: Path
    root_cert_path: Path
    sds_socket_path: Path
    ca_host: str
    ca_port: int = Field(ge=1, le=65535)
    discovery_host: str  # whose name the control plane's certificate must carry (xDS)
    key_algorithm: Literal["ecdsa", "rsa"] = "ecdsa"
    key_curve: Literal["P256", "P384"] = "P256"
    rsa_bits: int = Field(default=RSA_MIN_BITS, ge=RSA_MIN_BITS, le=RSA_MAX_BITS)
    cert_ttl: int = Field(default=DEFAULT_CERT_TTL, gt=0)
    xds_tls: bool = True
    retry_initial: float = 1.0
    retry_max: float = 30.0
    root_poll_interval: float = 5.0
    ca_timeout: float = 10.0

    @property
    def key_spec(self) -> KeySpec:
        return KeySpec(self.key_algorithm, self.key_curve, self.rsa_bits)

    @property
    def ca_target(self) -> str:
        """gRPC's target (`[v6]:port` for an IPv6 address)."""
        host = f"[{self.ca_host}]" if ":" in self.ca_host else self.ca_host
        return f"{host}:{self.ca_port}"


def _host_port(text: str, field: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise IdentitySettingsError(field, f"{text[:80]!r} is not host:port")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.match(host):
            raise IdentitySettingsError(field, f"{text[:80]!r} has no usable host") from None
    return host, int(port)


def _required_path(env: Mapping[str, str], name: str) -> Path:
    value = env.get(name, "").strip()
    if not value:
        raise IdentitySettingsError(name, "is required when identity is on")
    return Path(value)


def _key(env: Mapping[str, str]) -> dict[str, object]:
    algorithm = env.get(ENV_KEY_ALGORITHM, "").strip().upper() or "ECDSA"
    if algorithm not in ("ECDSA", "RSA"):
        raise IdentitySettingsError(ENV_KEY_ALGORITHM, f"{algorithm[:20]!r}: ECDSA or RSA")
    curve = env.get(ENV_CURVE, "").strip().upper() or "P256"
    if curve not in ("P256", "P384"):
        raise IdentitySettingsError(ENV_CURVE, f"{curve[:20]!r}: P256 or P384")
    bits_text = env.get(ENV_RSA_BITS, "").strip() or str(RSA_MIN_BITS)
    if not bits_text.isdigit() or not RSA_MIN_BITS <= int(bits_text) <= RSA_MAX_BITS:
        raise IdentitySettingsError(ENV_RSA_BITS, f"{bits_text[:20]!r}: {RSA_MIN_BITS}..8192")
    return {"key_algorithm": algorithm.lower(), "key_curve": curve, "rsa_bits": int(bits_text)}


def identity_settings(
    env: Mapping[str, str],
    options: IdentityOptions,
    *,
    spiffe_id: str,
    discovery_host: str,
    discovery_port: int,
) -> IdentitySettings | None:
    """None when identity is off; raises IdentitySettingsError naming the variable or flag."""
    if options.mode == "off":
        return None
    if options.mode == "auto" and not env.get(contract.ENV_TOKEN_PATH, "").strip():
        return None
    try:
        SpiffeId.parse(spiffe_id)
    except IdentityError as error:
        raise IdentitySettingsError(contract.ENV_SERVICE_ACCOUNT, str(error)) from None
    ca_text = options.ca_address or env.get(ENV_CA_ADDRESS, "").strip()
    field = "--ca-address" if options.ca_address else ENV_CA_ADDRESS
    ca_host, ca_port = _host_port(ca_text, field) if ca_text else (discovery_host, discovery_port)
    ttl = options.cert_ttl
    if ttl is None and env.get(ENV_SECRET_TTL, "").strip():
        try:
            ttl = max(1, parse_millis(env[ENV_SECRET_TTL].strip()) // 1000)
        except DurationError as error:
            raise IdentitySettingsError(ENV_SECRET_TTL, str(error)) from None
    return IdentitySettings(
        spiffe_id=spiffe_id,
        token_path=_required_path(env, contract.ENV_TOKEN_PATH),
        root_cert_path=_required_path(env, contract.ENV_ROOT_CERT_PATH),
        sds_socket_path=_required_path(env, contract.ENV_SDS_SOCKET_PATH),
        ca_host=ca_host,
        ca_port=ca_port,
        discovery_host=discovery_host,
        cert_ttl=ttl or DEFAULT_CERT_TTL,
        xds_tls=options.xds_tls,
        retry_initial=options.retry_initial,
        retry_max=options.retry_max,
        root_poll_interval=options.root_poll_interval,
        ca_timeout=options.ca_timeout,
        **_key(env),
    )
