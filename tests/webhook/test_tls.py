"""TLS: the real uvicorn serving with a certificate that is reloaded from disk, no restart."""

from __future__ import annotations

import json
import os
import socket
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from injector import InjectionConfig
from tests.webhook.conftest import NAMES, RunningServer, start_server, wait_for
from tests.webhook.rawhttp import read_response
from tests.webhook.samples import pod_review
from webhook import devcerts
from webhook.app import create_app
from webhook.settings import ServerSettings, WebhookSettings
from webhook.tls import CertificateError, CertificateStore, CertificateWatcher


def served_serial(server: RunningServer, server_hostname: str | None = "localhost") -> int:
    """The serial of the certificate served; `None`: connect by address, so no SNI is sent."""
    with server.connect(server_hostname or "127.0.0.1") as connection:
        der = connection.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def file_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def new_serving_pair(ca_directory: Path) -> tuple[bytes, bytes]:
    ca_cert, ca_key = devcerts.load_ca(ca_directory)
    now = datetime.now(UTC) - timedelta(minutes=1)
    return devcerts.issue_serving(ca_cert, ca_key, NAMES, ["127.0.0.1"], now=now)


def replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def test_serves_https_verified_by_the_ca(tls_server: RunningServer) -> None:
    with httpx.Client(verify=tls_server.client_context()) as client:
        by_name = client.get(f"https://localhost:{tls_server.port}/healthz")
        by_address = client.get(f"{tls_server.url}/readyz")
    assert by_name.status_code == 200
    assert by_address.status_code == 200
    assert by_address.text == "ready\n"
    assert served_serial(tls_server, None) == file_serial(tls_server.certs.cert_file)


def test_plain_http_is_not_served(tls_server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = raw.recv(1024)
    assert b"200 OK" not in answer


def test_http_1_1_is_chosen_over_h2(tls_server: RunningServer) -> None:
    """The API server offers h2; the webhook speaks HTTP/1.1 and must say so in ALPN."""
    context = tls_server.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with tls_server.connect_with(context) as connection:
        assert connection.selected_alpn_protocol() == "http/1.1"
        assert connection.version() in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("server_hostname", ["localhost", None], ids=["sni", "no-sni"])
def test_a_rewritten_certificate_is_served_without_restart(
    tls_server: RunningServer, server_hostname: str | None
) -> None:
    before = served_serial(tls_server, server_hostname)
    with httpx.Client(verify=tls_server.client_context()) as client:
        assert client.get(f"{tls_server.url}/healthz").status_code == 200  # a kept-alive connection
        cert, key = new_serving_pair(tls_server.certs.cert_file.parent)
        replace(tls_server.certs.key_file, key)
        replace(tls_server.certs.cert_file, cert)
        expected = file_serial(tls_server.certs.cert_file)
        assert expected != before
        wait_for(lambda: served_serial(tls_server, server_hostname) == expected)
        # The connection opened before the rotation still works.
        assert client.get(f"{tls_server.url}/healthz").status_code == 200


def test_a_mismatched_pair_keeps_the_old_certificate(
    tls_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    before = served_serial(tls_server)
    cert, key = new_serving_pair(tls_server.certs.cert_file.parent)
    replace(tls_server.certs.cert_file, cert)  # the key is still the old one: mid-rotation
    wait_for(lambda: "keeping the current serving certificate" in caplog.text)
    assert served_serial(tls_server) == before
    assert tls_server.store.ready()
    replace(tls_server.certs.key_file, key)
    wait_for(lambda: served_serial(tls_server) == file_serial(tls_server.certs.cert_file))


def _kubernetes_secret_volume(root: Path, cert: bytes, key: bytes, version: str) -> None:
    """Write a Secret volume's next version as the kubelet does: a new timestamped directory,
    then an atomic rename of the `..data` symlink onto it."""
    version_dir = root / f"..{version}"
    version_dir.mkdir()
    (version_dir / "tls.crt").write_bytes(cert)
    (version_dir / "tls.key").write_bytes(key)
    staging = root / "..data_tmp"
    staging.symlink_to(version_dir.name)
    os.replace(staging, root / "..data")
    for name in ("tls.crt", "tls.key"):
        if not (root / name).is_symlink():
            (root / name).symlink_to(f"..data/{name}")


def test_a_kubernetes_secret_rotation_is_picked_up(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    devcerts.issue(ca_dir, NAMES)
    volume = tmp_path / "secret"
    volume.mkdir()
    _kubernetes_secret_volume(volume, *new_serving_pair(ca_dir), "2026_11_25_20_00_00.1")
    settings = ServerSettings(
        host="127.0.0.1", port=0, cert_file=volume / "tls.crt", key_file=volume / "tls.key",
        reload_interval=0.2, log_level="warning",
    )  # fmt: skip
    store = CertificateStore(settings.cert_file, settings.key_file)
    store.load()
    app = create_app(WebhookSettings(), InjectionConfig(), readiness=store.ready)
    watcher = CertificateWatcher(store, settings.reload_interval)
    watcher.start()
    server, thread, port = start_server(app, settings, store)
    running = RunningServer(
        port, devcerts.DevCertificates(Path(), Path(), ca_dir / "ca.crt"), store, app
    )
    try:
        first = served_serial(running)
        assert first == file_serial(volume / "tls.crt")
        _kubernetes_secret_volume(volume, *new_serving_pair(ca_dir), "2026_11_25_21_00_00.2")
        second = file_serial(volume / "tls.crt")
        assert second != first
        wait_for(lambda: served_serial(running) == second)
        wait_for(lambda: served_serial(running, None) == second)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        watcher.stop()


def test_readiness_follows_the_certificate(tmp_path: Path) -> None:
    certs = devcerts.issue(tmp_path, NAMES)
    now = [datetime.now(UTC)]
    store = CertificateStore(certs.cert_file, certs.key_file, clock=lambda: now[0])
    assert not store.ready()  # nothing loaded yet
    store.load()
    assert store.ready()
    now[0] += timedelta(days=400)  # past the certificate's end
    assert not store.ready()


def test_unusable_files_are_named(tmp_path: Path) -> None:
    certs = devcerts.issue(tmp_path, NAMES)
    with pytest.raises(CertificateError, match=r"cannot read .*missing\.crt"):
        CertificateStore(tmp_path / "missing.crt", certs.key_file).load()
    (tmp_path / "garbage.crt").write_text("not a certificate")
    with pytest.raises(CertificateError, match=r"garbage\.crt .* not a usable certificate"):
        CertificateStore(tmp_path / "garbage.crt", certs.key_file).load()


def test_special_and_huge_files_are_refused_at_once_and_the_served_pair_stays(
    tmp_path: Path,
) -> None:
    """A FIFO (which would block the watcher for ever), a device and a 2 MB file swapped in
    for the certificate are refused without blocking; the certificate served stays."""
    certs = devcerts.issue(tmp_path, NAMES)
    store = CertificateStore(certs.cert_file, certs.key_file)
    store.load()
    served = store.current
    good = certs.cert_file.read_bytes()
    fifo = tmp_path / "fifo.crt"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.crt"
    huge.write_bytes(good * (2 * 1024 * 1024 // len(good) + 1))
    for hostile, reason in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device"), (huge, "limit")):
        started = time.monotonic()
        with pytest.raises(CertificateError, match=reason):
            CertificateStore(hostile, certs.key_file).load()
        os.replace(certs.cert_file, tmp_path / "aside.crt")
        os.symlink(hostile, certs.cert_file)
        store.poll()  # the watcher's path: logged, never raised, never blocked
        assert store.current is served
        certs.cert_file.unlink()
        os.replace(tmp_path / "aside.crt", certs.cert_file)
        assert time.monotonic() - started < 2


def test_reloading_unchanged_files_is_a_no_op(tmp_path: Path) -> None:
    certs = devcerts.issue(tmp_path, NAMES)
    store = CertificateStore(certs.cert_file, certs.key_file)
    assert store.load() is True
    loaded = store.current
    assert store.load() is False
    assert store.current is loaded
    os.utime(certs.cert_file, (time.time() + 5, time.time() + 5))  # touched, same content
    assert store.load() is False


def test_answers_are_not_held_back_by_nagle(tls_server: RunningServer) -> None:
    """Each answer is written as headers then body: without TCP_NODELAY on the connection the
    body waits for the client's delayed ACK, ~40 ms per review."""
    document = json.dumps(pod_review()).encode()
    request = (
        b"POST /inject HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(document)
    ) + document
    latencies = []
    with tls_server.connect() as connection:
        for _ in range(21):
            started = time.perf_counter()
            connection.sendall(request)
            status, _ = read_response(connection)
            latencies.append(time.perf_counter() - started)
            assert status == 200
    assert statistics.median(latencies) < 0.02, f"median {statistics.median(latencies):.3f} s"


def test_an_encrypted_key_is_refused_not_prompted_for(tmp_path: Path) -> None:
    certs = devcerts.issue(tmp_path, NAMES)
    key = serialization.load_pem_private_key(certs.key_file.read_bytes(), None)
    certs.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(CertificateError, match="not a usable certificate and key"):
        CertificateStore(certs.cert_file, certs.key_file).load()
