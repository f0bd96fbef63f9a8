"""SDS (`envoy.service.secret.v3.SecretDiscoveryService`) on a unix socket in the pod, in the
flavours Envoy may ask for: a State-of-the-World stream (`StreamSecrets`, what the bootstrap
configures), Delta (`DeltaSecrets`) and a one-shot `FetchSecrets`.

A stream sends the secrets it subscribes to when they exist and again whenever one changes;
a secret that does not exist yet is simply not sent (Envoy waits: `initial_fetch_timeout: 0s`).
A NACK is logged and not retried with the same version. A new certificate reaches Envoy here
without a restart; Envoy uses it for new connections and leaves open ones alone.

The socket is the pod's, but anything in the pod that can open it is a client: the server has
the control plane's gRPC guards (`SDS_LIMITS`: connections, handshake deadline, streams,
message size, keepalive enforcement, a small receive window), sized for one Envoy. Its
connections are not recycled by age, as the control plane's are: there is no other replica to
spread to.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, Final

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import any_pb2

from control.agent.secrets import SECRET_TYPE, SecretStore
from control.identity.spiffe import shorten
from control.serving.grpc_limits import GrpcLimits, grpc_server

log = logging.getLogger("mizzen.agent.sds")

MAX_NAMES: Final = 64
SDS_LIMITS: Final = GrpcLimits(
    max_connections=64,
    handshake_timeout=5.0,
    max_concurrent_streams=32,
    max_message_bytes=1024 * 1024,
    max_connection_idle=0,
    max_connection_age=0,
)
_nonces = itertools.count(1)


def _nonce() -> str:
    return str(next(_nonces))


def _packed(store: SecretStore, names: list[str]) -> tuple[str, list[any_pb2.Any]]:
    """The combined version of the named secrets that exist, and those secrets packed."""
    versions, resources = [], []
    for name in names:
        found = store.get(name)
        if found is None:
            continue
        versions.append(f"{name}={found.version}")
        packed = any_pb2.Any()
        packed.Pack(found.secret)
        resources.append(packed)
    return ";".join(versions), resources


async def _wakeups(
    store: SecretStore, read: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
) -> AsyncGenerator[None, None]:
    """Yield once per wake-up of a stream (the store changed, or `read`, the client's requests,
    set the event) until the client's stream ends, its error raised. Use with
    `contextlib.aclosing`: closing stops listening to the store and the reader."""
    event = store.listen()
    reader = asyncio.create_task(read(event))
    try:
        while True:
            waiter = asyncio.create_task(event.wait())
            await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            event.clear()
            yield
            if reader.done():
                reader.result()  # the client went away (or broke the stream): end
                return
    finally:
        store.unlisten(event)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


class SdsService(sds_pb2_grpc.SecretDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, store: SecretStore) -> None:
        self.store = store

    async def StreamSecrets(  # noqa: N802 - the gRPC method's name
        self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest], context: Any
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        names: list[str] = []
        sent: dict[str, str] = {"nonce": "", "version": "", "names": ""}

        async def read(wake: asyncio.Event) -> None:
            async for request in request_iterator:
                if request.response_nonce and request.error_detail.message:
                    log.warning(
                        "Envoy rejected secrets %s: %s",
                        shorten(sent["version"]),
                        shorten(request.error_detail.message, 300),
                    )
                names[:] = sorted(set(request.resource_names))[:MAX_NAMES]
                wake.set()

        async with contextlib.aclosing(_wakeups(self.store, read)) as wakeups:
            async for _ in wakeups:
                version, resources = _packed(self.store, names)
                subscription = ",".join(names)
                if resources and (version, subscription) != (sent["version"], sent["names"]):
                    sent.update(nonce=_nonce(), version=version, names=subscription)
                    yield discovery_pb2.DiscoveryResponse(
                        version_info=version,
                        resources=resources,
                        type_url=SECRET_TYPE,
                        nonce=sent["nonce"],
                    )

    async def DeltaSecrets(  # noqa: N802 - the gRPC method's name
        self, request_iterator: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest], context: Any
    ) -> AsyncIterator[discovery_pb2.DeltaDiscoveryResponse]:
        subscribed: set[str] = set()
        known: dict[str, str] = {}  # name -> version the client has

        async def read(wake: asyncio.Event) -> None:
            first = True
            async for request in request_iterator:
                if first:
                    known.update(dict(request.initial_resource_versions))
                    first = False
                if request.error_detail.message:
                    log.warning("Envoy rejected secrets: %s", shorten(request.error_detail.message))
                subscribed.update(request.resource_names_subscribe)
                subscribed.difference_update(request.resource_names_unsubscribe)
                for name in request.resource_names_unsubscribe:
                    known.pop(name, None)
                if len(subscribed) > MAX_NAMES:
                    raise ValueError("too many secrets subscribed")
                wake.set()

        async with contextlib.aclosing(_wakeups(self.store, read)) as wakeups:
            async for _ in wakeups:
                response = self._delta(subscribed, known)
                if response is not None:
                    yield response

    def _delta(
        self, subscribed: set[str], known: dict[str, str]
    ) -> discovery_pb2.DeltaDiscoveryResponse | None:
        names = sorted(self.store.names()) if "*" in subscribed else sorted(subscribed)
        resources = []
        for name in names:
            found = self.store.get(name)
            if found is None or known.get(name) == found.version:
                continue
            known[name] = found.version
            resource = discovery_pb2.Resource(name=name, version=found.version)
            resource.resource.Pack(found.secret)
            resources.append(resource)
        if not resources:
            return None
        return discovery_pb2.DeltaDiscoveryResponse(
            resources=resources, type_url=SECRET_TYPE, nonce=_nonce()
        )

    async def FetchSecrets(  # noqa: N802 - the gRPC method's name
        self, request: discovery_pb2.DiscoveryRequest, context: Any
    ) -> discovery_pb2.DiscoveryResponse:
        names = sorted(set(request.resource_names))[:MAX_NAMES]
        version, resources = _packed(self.store, names)
        if not resources:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no such secret yet")
        return discovery_pb2.DiscoveryResponse(
            version_info=version, resources=resources, type_url=SECRET_TYPE, nonce=_nonce()
        )


def _remove_stale_socket(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise OSError(f"{path} exists and is not a socket")
    path.unlink()


class SdsServer:
    """The SDS gRPC server on a unix socket, readable by Envoy (the proxy uid when we are
    root and Envoy is not)."""

    def __init__(
        self,
        store: SecretStore,
        path: Path,
        run_as: tuple[int, int] | None = None,
        limits: GrpcLimits = SDS_LIMITS,
    ) -> None:
        self.store = store
        self.path = path
        self.run_as = run_as
        self.limits = limits
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        if len(os.fsencode(self.path)) > 100:
            raise OSError(f"{self.path}: too long for a unix socket path")
        directory = self.path.parent
        if not directory.exists():
            directory.mkdir(mode=0o750, parents=True)
            if self.run_as is not None:
                os.chown(directory, *self.run_as)
        _remove_stale_socket(self.path)
        server = grpc_server(self.limits)
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(SdsService(self.store), server)
        if not server.add_insecure_port(f"unix:{self.path}"):
            raise OSError(f"cannot listen on {self.path}")
        await server.start()
        os.chmod(self.path, 0o660)
        if self.run_as is not None:
            os.chown(self.path, *self.run_as)
        self._server = server
        log.info("SDS on unix:%s", self.path)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0.2)
            self._server = None
        with contextlib.suppress(OSError):
            _remove_stale_socket(self.path)
