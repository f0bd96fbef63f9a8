"""The agent's SDS server on a real unix socket, driven by a gRPC client as Envoy drives it:
State of the World (subscribe, ACK, push on change, NACK), Delta, and Fetch; and the socket's
guards against a client in the pod that holds connections without speaking."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from control.agent.sds import SDS_LIMITS, SdsServer
from control.agent.secrets import ROOTS, SECRET_TYPE, WORKLOAD, SecretStore
from tests.control.test_xds_limits import _closed_within

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sds() -> AsyncIterator[tuple[SecretStore, sds_pb2_grpc.SecretDiscoveryServiceStub]]:
    with tempfile.TemporaryDirectory(prefix="sds-") as directory:  # short: a socket path
        store = SecretStore()
        server = SdsServer(store, Path(directory) / "sock" / "socket")
        await server.start()
        assert oct(server.path.stat().st_mode & 0o777) == "0o660"
        channel = grpc.aio.insecure_channel(f"unix:{server.path}")
        yield store, sds_pb2_grpc.SecretDiscoveryServiceStub(channel)
        await channel.close()
        await server.stop()
        assert not server.path.exists()


def _secrets(response: Any) -> dict[str, secret_pb2.Secret]:
    found = {}
    for packed in response.resources:
        secret = secret_pb2.Secret()
        assert packed.Unpack(secret)
        found[secret.name] = secret
    return found


class _Requests:
    """A request stream the test writes to."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> Any:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        return item


async def test_state_of_the_world_waits_for_the_secret_then_pushes_changes(
    sds: tuple[SecretStore, Any],
) -> None:
    store, stub = sds
    requests = _Requests()
    stream = stub.StreamSecrets(requests)
    await requests.queue.put(discovery_pb2.DiscoveryRequest(resource_names=[WORKLOAD]))
    first = asyncio.ensure_future(stream.read())
    await asyncio.sleep(0.2)
    assert not first.done()  # nothing to send yet: Envoy waits
    store.set_workload(b"CHAIN-1", b"KEY-1")
    response = await asyncio.wait_for(first, 5)
    assert response.type_url == SECRET_TYPE
    secret = _secrets(response)[WORKLOAD]
    assert secret.tls_certificate.certificate_chain.inline_bytes == b"CHAIN-1"
    assert secret.tls_certificate.private_key.inline_bytes == b"KEY-1"
    await requests.queue.put(
        discovery_pb2.DiscoveryRequest(
            resource_names=[WORKLOAD],
            version_info=response.version_info,
            response_nonce=response.nonce,
        )
    )  # ACK
    store.set_roots(b"ROOTS")  # not subscribed on this stream: no push
    store.set_workload(b"CHAIN-2", b"KEY-2")
    pushed = await asyncio.wait_for(stream.read(), 5)
    assert pushed.version_info != response.version_info
    assert pushed.nonce != response.nonce
    assert _secrets(pushed)[WORKLOAD].tls_certificate.certificate_chain.inline_bytes == b"CHAIN-2"
    await requests.queue.put(None)
    stream.cancel()


async def test_a_nack_is_logged(
    sds: tuple[SecretStore, Any], caplog: pytest.LogCaptureFixture
) -> None:
    store, stub = sds
    store.set_roots(b"ROOTS")
    requests = _Requests()
    stream = stub.StreamSecrets(requests)
    await requests.queue.put(discovery_pb2.DiscoveryRequest(resource_names=[ROOTS]))
    response = await asyncio.wait_for(stream.read(), 5)
    assert _secrets(response)[ROOTS].validation_context.trusted_ca.inline_bytes == b"ROOTS"
    nack = discovery_pb2.DiscoveryRequest(
        resource_names=[ROOTS], response_nonce=response.nonce, version_info=""
    )
    nack.error_detail.message = "bad roots"
    with caplog.at_level(logging.WARNING, logger="mizzen.agent.sds"):
        await requests.queue.put(nack)
        for _ in range(50):
            if "bad roots" in caplog.text:
                break
            await asyncio.sleep(0.02)
    assert "Envoy rejected secrets" in caplog.text
    stream.cancel()


async def test_delta_sends_each_secret_once_per_version(sds: tuple[SecretStore, Any]) -> None:
    store, stub = sds
    store.set_workload(b"CHAIN", b"KEY")
    store.set_roots(b"ROOTS")
    requests = _Requests()
    stream = stub.DeltaSecrets(requests)
    await requests.queue.put(
        discovery_pb2.DeltaDiscoveryRequest(
            type_url=SECRET_TYPE, resource_names_subscribe=[WORKLOAD, ROOTS]
        )
    )
    response = await asyncio.wait_for(stream.read(), 5)
    assert {r.name for r in response.resources} == {WORKLOAD, ROOTS}
    roots_version = next(r.version for r in response.resources if r.name == ROOTS)
    store.set_workload(b"CHAIN-2", b"KEY-2")
    update = await asyncio.wait_for(stream.read(), 5)
    assert [r.name for r in update.resources] == [WORKLOAD]  # only what changed
    stream.cancel()
    # A reconnecting Envoy that already has the roots gets only the certificate.
    again = _Requests()
    resumed = stub.DeltaSecrets(again)
    await again.queue.put(
        discovery_pb2.DeltaDiscoveryRequest(
            type_url=SECRET_TYPE,
            resource_names_subscribe=[WORKLOAD, ROOTS],
            initial_resource_versions={ROOTS: roots_version},
        )
    )
    first = await asyncio.wait_for(resumed.read(), 5)
    assert [r.name for r in first.resources] == [WORKLOAD]
    resumed.cancel()


async def test_fetch(sds: tuple[SecretStore, Any]) -> None:
    store, stub = sds
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.FetchSecrets(discovery_pb2.DiscoveryRequest(resource_names=[WORKLOAD]))
    assert missing.value.code() == grpc.StatusCode.UNAVAILABLE
    store.set_workload(b"CHAIN", b"KEY")
    response = await stub.FetchSecrets(
        discovery_pb2.DiscoveryRequest(resource_names=[WORKLOAD, "nonexistent"])
    )
    assert list(_secrets(response)) == [WORKLOAD]


async def test_a_stale_socket_is_replaced_but_a_file_is_not() -> None:
    with tempfile.TemporaryDirectory(prefix="sds-") as directory:
        path = Path(directory) / "socket"
        path.write_text("not a socket")
        with pytest.raises(OSError, match="not a socket"):
            await SdsServer(SecretStore(), path).start()
        path.unlink()
        with socket.socket(socket.AF_UNIX) as stale:  # a crashed agent's socket stays behind
            stale.bind(str(path))
        server = SdsServer(SecretStore(), path)
        await server.start()
        await server.stop()


@pytest.mark.parametrize("flavour", ["sotw", "delta"])
async def test_a_stream_that_ends_stops_listening_to_the_store(
    sds: tuple[SecretStore, Any], flavour: str
) -> None:
    """Envoy reconnects its SDS stream at every restart of its own: a stream gone must leave no
    listener behind (else every rotation would wake dead streams, a leak per reconnect)."""
    store, stub = sds
    store.set_roots(b"ROOTS")
    for ending in ("client ends its requests", "client cancels"):
        requests = _Requests()
        if flavour == "sotw":
            stream = stub.StreamSecrets(requests)
            await requests.queue.put(discovery_pb2.DiscoveryRequest(resource_names=[ROOTS]))
        else:
            stream = stub.DeltaSecrets(requests)
            await requests.queue.put(
                discovery_pb2.DeltaDiscoveryRequest(resource_names_subscribe=[ROOTS])
            )
        await asyncio.wait_for(stream.read(), 5)
        assert len(store._listeners) == 1, ending
        if ending == "client cancels":
            stream.cancel()
        else:
            await requests.queue.put(None)
        for _ in range(100):
            if not store._listeners:
                break
            await asyncio.sleep(0.02)
        assert not store._listeners, ending


async def test_silent_connections_are_capped_and_cut_at_the_handshake_deadline() -> None:
    """Something in the pod opens connections and never speaks HTTP/2: those beyond the cap are
    closed at once, the rest at the handshake deadline, and Envoy's stream is served
    meanwhile and after (gRPC's own deadline is 120 s, and it has no cap)."""
    limits = dataclasses.replace(SDS_LIMITS, max_connections=4, handshake_timeout=1.0)
    with tempfile.TemporaryDirectory(prefix="sds-") as directory:
        store = SecretStore()
        store.set_roots(b"ROOTS")
        server = SdsServer(store, Path(directory) / "socket", limits=limits)
        await server.start()
        channel = grpc.aio.insecure_channel(f"unix:{server.path}")
        flood: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            stub = sds_pb2_grpc.SecretDiscoveryServiceStub(channel)
            fetch = discovery_pb2.DiscoveryRequest(resource_names=[ROOTS])
            assert _secrets(await stub.FetchSecrets(fetch, timeout=5))  # Envoy holds one slot
            for _ in range(12):
                flood.append(await asyncio.open_unix_connection(str(server.path)))
            # Three slots are left: at least nine of the twelve are closed at once.
            over = await asyncio.gather(*(_closed_within(reader, 0.5) for reader, _ in flood))
            assert sum(over) >= 9, over
            # The rest never speak: closed at the handshake deadline (1 s here).
            assert all(await asyncio.gather(*(_closed_within(r, 3) for r, _ in flood)))
            assert _secrets(await stub.FetchSecrets(fetch, timeout=5))
        finally:
            for _, writer in flood:
                writer.close()
            await channel.close()
            await server.stop()
