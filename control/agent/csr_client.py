"""The agent's side of Istio's CSR API: one `CreateCertificate` call over TLS.

Each call re-reads the token (the kubelet rotates it) and the root file (a root rotation adds a
root), and opens a fresh channel that trusts exactly those roots and checks the CA's certificate
against the host it dials (gRPC's own name check: a DNS SAN for a name, an IP SAN for an address).
Calls are rare (twice a lifetime), so a fresh channel costs nothing that matters.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final, Protocol

import grpc

from control.identity import certapi
from control.identity.files import FileReadError, read_bounded
from control.identity.pem import MAX_BUNDLE_BYTES

MAX_TOKEN_BYTES: Final = 64 * 1024
MAX_RESPONSE_BYTES: Final = 1024 * 1024


class CaCallError(Exception):
    """The call failed; the message says how (status and the CA's message, or the local cause)."""


class CertificateSigner(Protocol):
    async def create_certificate(self, csr_pem: str, ttl_seconds: int) -> list[str]: ...


def read_token(path: Path) -> str:
    token = read_bounded(path, MAX_TOKEN_BYTES).decode("utf-8", "replace").strip()
    if not token:
        raise FileReadError(f"{path}: the token file is empty")
    return token


class GrpcCertificateSigner:
    def __init__(self, target: str, token_path: Path, root_cert_path: Path, timeout: float) -> None:
        self.target = target
        self.token_path = token_path
        self.root_cert_path = root_cert_path
        self.timeout = timeout

    async def create_certificate(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        try:
            token = await asyncio.to_thread(read_token, self.token_path)
            roots = await asyncio.to_thread(read_bounded, self.root_cert_path, MAX_BUNDLE_BYTES)
        except FileReadError as error:
            raise CaCallError(str(error)) from None
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
        options = [("grpc.max_receive_message_length", MAX_RESPONSE_BYTES)]
        request = certapi.new_request(csr_pem, ttl_seconds)
        try:
            async with grpc.aio.secure_channel(self.target, credentials, options) as channel:
                call = channel.unary_unary(
                    certapi.METHOD_PATH,
                    request_serializer=certapi.serialize,
                    response_deserializer=certapi.parse_response,
                )
                response = await call(
                    request,
                    metadata=[("authorization", f"Bearer {token}")],
                    timeout=self.timeout,
                )
        except grpc.aio.AioRpcError as error:
            detail = (error.details() or "")[:300]
            raise CaCallError(f"{self.target}: {error.code().name}: {detail}") from None
        return [str(pem) for pem in response.cert_chain]
