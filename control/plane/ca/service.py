"""`istio.v1.auth.IstioCertificateService/CreateCertificate`: the CSR API.

Per call: the bearer token from the `authorization` metadata (none: refused, whoever calls,
loopback included) → admission (at most `max_pending` calls in flight; beyond that
RESOURCE_EXHAUSTED at once, so a storm of CSRs queues nowhere) → one job in a thread pool:
authentication (TokenReview is a network call, bounded by its timeout), then the pure signer,
at most `sign_workers` at once (CPU), so neither blocks the event loop that also serves xDS, and
a slow API server holds threads, not signing. One hop to the pool per call, not two (a hop costs
about as much CPU as the signature). Every refusal is a gRPC status with a clear message,
logged (peer and reason, no token) and counted by reason. The request's `metadata` is ignored.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import grpc

from control.identity import certapi
from control.identity.spiffe import shorten
from control.plane.ca.authn import AuthenticationError, Authenticator
from control.plane.ca.authority import CertificateAuthority
from control.plane.ca.ca_metrics import CaMetrics
from control.plane.ca.refusals import Reason, Refusal
from control.plane.ca.signer import Issued

log = logging.getLogger("mizzen.ca")

_STATUS: Final = {
    Reason.NO_TOKEN: grpc.StatusCode.UNAUTHENTICATED,
    Reason.BAD_TOKEN: grpc.StatusCode.UNAUTHENTICATED,
    Reason.EXPIRED_TOKEN: grpc.StatusCode.UNAUTHENTICATED,
    Reason.WRONG_AUDIENCE: grpc.StatusCode.UNAUTHENTICATED,
    Reason.NOT_AUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Reason.NOT_A_SERVICE_ACCOUNT: grpc.StatusCode.UNAUTHENTICATED,
    Reason.REVIEW_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.CSR_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.CSR_UNPARSEABLE: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.CSR_BAD_SIGNATURE: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.WEAK_KEY: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.BAD_LIFETIME: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.IDENTITY_MISMATCH: grpc.StatusCode.PERMISSION_DENIED,
    Reason.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.CA_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}
MAX_TOKEN_BYTES: Final = 16 * 1024


def status_of(reason: Reason) -> grpc.StatusCode:
    return _STATUS[reason]


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    max_pending: int = 256  # calls admitted at once (authenticating, queued or signing)
    sign_workers: int = 2  # signatures at once
    workers: int = 8  # threads: authentication may wait on the API server
    timeout: float = 15.0  # a call (authentication included) answers UNAVAILABLE after this


def bearer_token(metadata: Any) -> str | Refusal:
    """The token of the one `authorization: Bearer <token>` entry."""
    values = [str(v) for k, v in (metadata or ()) if str(k).lower() == "authorization"]
    if not values:
        return Refusal(Reason.NO_TOKEN, "no bearer token (authorization metadata)")
    if len(values) > 1:
        return Refusal(Reason.BAD_TOKEN, "more than one authorization entry")
    scheme, _, token = values[0].partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return Refusal(Reason.NO_TOKEN, "authorization is not 'Bearer <token>'")
    if len(token) > MAX_TOKEN_BYTES:
        return Refusal(Reason.BAD_TOKEN, f"token longer than {MAX_TOKEN_BYTES} bytes")
    return token


def requested_lifetime(seconds: int) -> timedelta | None:
    """0 is proto3's "not given" (the default lifetime); beyond ten years is as good as ten."""
    if seconds == 0:
        return None
    return timedelta(seconds=max(-1, min(seconds, 10 * 365 * 86400)))


class _RefusedError(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


class CertificateService:
    def __init__(
        self,
        authority: CertificateAuthority,
        authenticator: Authenticator,
        metrics: CaMetrics,
        limits: ServiceLimits | None = None,
    ) -> None:
        self.authority = authority
        self.authenticator = authenticator
        self.metrics = metrics
        self.limits = limits or ServiceLimits()
        self._pool = ThreadPoolExecutor(self.limits.workers, "ca")
        self._signing = threading.BoundedSemaphore(self.limits.sign_workers)
        self._pending = 0

    def register(self, server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            self.create_certificate,
            request_deserializer=certapi.parse_request,
            response_serializer=certapi.serialize,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(certapi.SERVICE, {certapi.METHOD: handler}),)
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def create_certificate(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        started = time.perf_counter()
        self.metrics.received()
        try:
            chain = await self._create(request, context)
        except _RefusedError as refused:
            await self._refuse(refused.refusal, context)
            raise AssertionError("unreachable: abort raises") from None
        self.metrics.count_issued()
        self.metrics.request_seconds.observe(time.perf_counter() - started)
        return certapi.new_response(list(chain))

    async def _create(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        token = bearer_token(context.invocation_metadata())
        if isinstance(token, Refusal):
            raise _RefusedError(token)
        if self._pending >= self.limits.max_pending:
            raise _RefusedError(Refusal(Reason.OVERLOADED, "too many certificate requests; retry"))
        csr_pem = str(request.csr)
        if len(csr_pem) > self.authority.policy.max_csr_bytes:  # cheap, before any review
            raise _RefusedError(Refusal(Reason.CSR_TOO_LARGE, f"CSR of {len(csr_pem)} characters"))
        requested = requested_lifetime(int(request.validity_duration))
        job = asyncio.get_running_loop().run_in_executor(
            self._pool, self._authenticate_and_sign, token, csr_pem, requested
        )
        self._pending += 1
        try:
            result = await asyncio.wait_for(job, self.limits.timeout)
        except TimeoutError:
            raise _RefusedError(Refusal(Reason.REVIEW_UNAVAILABLE, "timed out")) from None
        finally:
            self._pending -= 1
        if isinstance(result, Refusal):
            raise _RefusedError(result)
        return result.chain_pem

    def _authenticate_and_sign(
        self, token: str, csr_pem: str, requested: timedelta | None
    ) -> Issued | Refusal:
        try:
            identity = self.authenticator.authenticate(token)
        except AuthenticationError as error:
            return error.refusal
        with self._signing:
            started = time.perf_counter()
            try:
                return self.authority.sign(csr_pem, identity, requested)
            finally:
                self.metrics.signing_seconds.observe(time.perf_counter() - started)

    async def _refuse(self, refusal: Refusal, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.metrics.count_refused(refusal.reason)
        log.warning(
            "certificate refused for %s: %s: %s",
            shorten(context.peer() or "?"),
            refusal.reason.value,
            shorten(refusal.message, 300),
        )
        await context.abort(status_of(refusal.reason), f"{refusal.reason.value}: {refusal.message}")
