"""`mizzen control`: the control plane (xDS over gRPC, debug endpoints) on a config directory
or, with `--kube`, on the Kubernetes API; with `--ca-dir` or `--kube` the mesh CA and its ports
(`control_identity`: ADS over mutual TLS on 15012, the CSR API on 15013), with `--kube` also the
Lease and its duties (`control_leader`); with `--tls-cert`/`--tls-key`, or `--webhook-cert-dir`
(a certificate from the mesh CA), the admission webhooks. One process does what istiod does."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from control.api.duration import DurationError, parse_millis
from control.cli.ca_wiring import ca_settings
from control.cli.control_extras import LeaderConfig, SideServices, WebhookParts, start_or_stop
from control.cli.control_identity import CaStartError, IdentityConfig, add_identity_flags
from control.cli.control_process import ControlPlane, ControlSettings
from control.cli.settings_files import injection_for_mesh, load_injection_config
from control.cli.webhook_certs import (
    WebhookCertError,
    webhook_files,
    webhook_names,
)
from control.config.files import FileReadError, read_text
from control.config.mesh_config import MeshConfig, load_mesh_config
from control.config.settings import describe
from control.install.names import DEFAULT_REVISION, Names
from control.plane.sources.base import ConfigSource
from control.plane.sources.file import FileLimits
from control.plane.sources.kube import KubeSource, KubeSyncError, kube_client
from control.plane.xds.ads.stream import StreamLimits
from control.plane.xds.ads.throttle import DEFAULT_MAX_BYTES
from control.serving.grpc_limits import GrpcLimits
from control.serving.limits import raise_fd_limit
from webhook.settings import ServerSettings
from webhook.tls import CertificateError, CertificateStore

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config-dir", type=Path,
        help="directory of Kubernetes YAML/JSON (Services, Pods, mesh CRDs), watched for changes",
    )  # fmt: skip
    source.add_argument(
        "--kube", action="store_true",
        help="read the config from the Kubernetes API (list+watch)",
    )  # fmt: skip
    parser.add_argument(
        "--kubeconfig", type=Path,
        help="kubeconfig file for --kube (default: the pod's in-cluster service account)",
    )  # fmt: skip
    parser.add_argument(
        "--xds-port", type=_port, default=15010,
        help="plaintext ADS port, unauthenticated: tools, tests, benchmarks (0: any)",
    )  # fmt: skip
    parser.add_argument(
        "--xds-address", default="127.0.0.1", metavar="ADDRESS",
        help="address of the plaintext ADS port (default loopback; '::' for all)",
    )  # fmt: skip
    parser.add_argument("--debug-port", type=_port, default=15014, help="debug HTTP port (0: any)")
    parser.add_argument(
        "--mesh-config", type=Path, help="MeshConfig YAML (e.g. outboundTrafficPolicy.mode)"
    )
    parser.add_argument(
        "--config-max-file-bytes", type=_positive, default=FileLimits().max_bytes, metavar="N",
        help="a config file larger than this is not read (its last good objects stay)",
    )  # fmt: skip
    parser.add_argument(
        "--config-max-documents", type=_positive, default=FileLimits().max_documents,
        metavar="N", help="a config file with more documents (and List items) is not read",
    )  # fmt: skip
    limits = StreamLimits()
    parser.add_argument(
        "--xds-max-message-bytes", type=_positive, default=limits.max_message_bytes, metavar="N",
        help="largest xDS request accepted (gRPC receive limit)",
    )  # fmt: skip
    parser.add_argument(
        "--xds-max-names", type=_positive, default=limits.max_names, metavar="N",
        help="resource names one ADS stream may request or hold; beyond: RESOURCE_EXHAUSTED",
    )  # fmt: skip
    parser.add_argument(
        "--xds-max-request-rate", type=_positive, default=round(limits.requests_per_second),
        metavar="N", help="requests per second one ADS stream may send, sustained (burst: 2x)",
    )  # fmt: skip
    parser.add_argument(
        "--xds-max-bytes-in-flight", type=_positive, default=DEFAULT_MAX_BYTES, metavar="N",
        help="bytes of xDS responses being written at once, all streams (the rest wait their "
        "turn); as much again for proxies slow to read",
    )  # fmt: skip
    parser.add_argument(
        "--drain-duration", type=_duration, default=5.0, metavar="DURATION",
        help="on SIGTERM, close the proxies' streams spread over this long (e.g. 5s; 0: at once), "
        "so they move to another replica a few at a time",
    )  # fmt: skip
    grpc_limits = GrpcLimits()
    parser.add_argument(
        "--xds-max-connections", type=_positive, default=grpc_limits.max_connections,
        metavar="N", help="open xDS connections; beyond, a new one is closed at accept",
    )  # fmt: skip
    parser.add_argument(
        "--xds-handshake-timeout", type=_seconds, default=grpc_limits.handshake_timeout,
        metavar="S", help="seconds an xDS connection has to start HTTP/2 (and TLS)",
    )  # fmt: skip
    parser.add_argument(
        "--xds-max-connection-age", type=_seconds, default=grpc_limits.max_connection_age,
        metavar="S", help="xDS connections are recycled after this long (0: never)",
    )  # fmt: skip
    parser.add_argument(
        "--debug-max-connections", type=_positive, default=64, metavar="N",
        help="open connections to the debug port; beyond, a new one is closed at accept",
    )  # fmt: skip
    parser.add_argument(
        "--debug-token-file", type=Path, metavar="FILE",
        help="a bearer token (16+ characters) that opens /debug/* to non-loopback clients",
    )  # fmt: skip
    webhook = parser.add_argument_group("admission webhooks (served when a certificate is given)")
    webhook.add_argument("--webhook-port", type=_port, default=15017, help="HTTPS port (0: any)")
    webhook.add_argument("--tls-cert", type=Path, help="serving certificate (PEM), reloaded")
    webhook.add_argument("--tls-key", type=Path, help="its private key (PEM), reloaded")
    webhook.add_argument(
        "--webhook-cert-dir", type=Path, metavar="DIR",
        help="the mesh CA issues the webhooks' certificate into DIR (tls.crt, tls.key), renewed",
    )  # fmt: skip
    webhook.add_argument(
        "--injection-config", type=Path, help="injection settings (YAML, camelCase keys)"
    )
    parser.add_argument(
        "--revision", default=DEFAULT_REVISION,
        help="with --kube: the install's revision (names the Lease and the webhooks)",
    )  # fmt: skip
    add_identity_flags(parser, _port)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _duration(text: str) -> float:
    """Seconds, from a duration as Istio writes them (`5s`, `500ms`, `1m`), or `0`."""
    if text.strip() in ("0", "0s", "0ms"):
        return 0.0
    try:
        return parse_millis(text) / 1000
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0-86400)")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _debug_token(path: Path | None) -> str | None:
    """The token in `path` (surrounding whitespace dropped); ValueError naming the flag."""
    if path is None:
        return None
    try:
        token = read_text(path, 4096, flag="--debug-token-file").strip()
    except FileReadError as error:
        raise ValueError(f"--debug-token-file {path}: {error}") from None
    if len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError(
            f"--debug-token-file {path}: the token must be 16 or more printable ASCII "
            "characters without spaces"
        )
    return token


def _webhook_parts(
    args: argparse.Namespace, mesh: MeshConfig, identity: IdentityConfig | None
) -> WebhookParts | None:
    """None when no certificate is given; raises ValueError naming the flag otherwise."""
    given = args.tls_cert is not None or args.tls_key is not None
    if not given and args.webhook_cert_dir is None:
        if args.injection_config is not None:
            raise ValueError(
                "--injection-config needs --tls-cert and --tls-key, or --webhook-cert-dir "
                "(the webhooks)"
            )
        return None
    if given and args.webhook_cert_dir is not None:
        raise ValueError("--webhook-cert-dir and --tls-cert/--tls-key exclude each other")
    if given and (args.tls_cert is None or args.tls_key is None):
        raise ValueError("the webhooks need both --tls-cert and --tls-key")
    if args.webhook_cert_dir is not None and identity is None:
        raise ValueError("--webhook-cert-dir needs the mesh CA (--ca-dir or --kube)")
    injection = injection_for_mesh(
        mesh, load_injection_config(args.injection_config, "--injection-config"),
        "--injection-config",
    )  # fmt: skip
    if args.webhook_cert_dir is not None:
        assert identity is not None
        cert_file, key_file = webhook_files(args.webhook_cert_dir)
        names = tuple(webhook_names(identity.settings))
    else:
        cert_file, key_file, names = args.tls_cert, args.tls_key, ()
    settings = ServerSettings(
        port=args.webhook_port, cert_file=cert_file, key_file=key_file, log_level=args.log_level
    )
    store = CertificateStore(settings.cert_file, settings.key_file)
    if not names:
        try:
            store.load()
        except CertificateError as error:
            raise ValueError(f"--tls-cert/--tls-key: {error}") from None
    return WebhookParts(settings, store, injection, names)


class PlaneFactory(Protocol):
    def __call__(
        self,
        settings: ControlSettings,
        source: ConfigSource | None,
        identity: IdentityConfig | None = None,
    ) -> ControlPlane: ...


def _plane(
    settings: ControlSettings, source: ConfigSource | None, identity: IdentityConfig | None = None
) -> ControlPlane:
    return ControlPlane(settings, source=source, identity=identity)


async def _serve(
    settings: ControlSettings,
    source: ConfigSource | None = None,
    webhook_parts: WebhookParts | None = None,
    make_plane: PlaneFactory = _plane,
    identity: IdentityConfig | None = None,
    leader: LeaderConfig | None = None,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    plane = make_plane(settings, source, identity)
    if webhook_parts is not None:  # ready only once the webhooks can answer over TLS
        plane.require_for_readiness(webhook_parts.store.ready)
    extras = SideServices()
    try:
        if not await start_or_stop(plane, stop):
            await plane.stop()
            return 0
        await extras.start(plane, webhook_parts, leader)
    except OSError as error:
        sys.stderr.write(f"mizzen control: cannot listen: {error}\n")
        await extras.stop()
        await plane.stop()
        return 1
    except (KubeSyncError, CaStartError, WebhookCertError) as error:
        # the initial list failed (unreachable, forbidden, ...), or the CA cannot be used
        sys.stderr.write(f"mizzen control: {error}\n")
        await extras.stop()
        await plane.stop()
        return 1
    serving = plane.ports_line()
    if extras.webhook is not None:
        serving += f" webhook={extras.webhook.port}"
    sys.stdout.write(f"mizzen control: {serving}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await extras.stop()
        await plane.stop()
    return 0


def run(args: argparse.Namespace, make_plane: PlaneFactory = _plane) -> int:
    """`make_plane`: how the plane is made from its settings and source (the scale benchmark
    runs its baseline through here)."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config_dir: Path | None = args.config_dir
    if config_dir is not None and not config_dir.is_dir():
        sys.stderr.write(f"mizzen control: --config-dir {config_dir}: not a directory\n")
        return 2
    if args.kubeconfig is not None and not args.kube:
        sys.stderr.write("mizzen control: --kubeconfig needs --kube\n")
        return 2
    try:
        mesh = load_mesh_config(args.mesh_config)
        # With --kube the directory is unused (the plane logs it): name the source instead.
        settings = ControlSettings(
            config_dir=config_dir,
            xds_port=args.xds_port, xds_address=args.xds_address, debug_port=args.debug_port,
            mesh=mesh, config_max_file_bytes=args.config_max_file_bytes,
            config_max_documents=args.config_max_documents,
            xds_max_message_bytes=args.xds_max_message_bytes, xds_max_names=args.xds_max_names,
            xds_max_bytes_in_flight=args.xds_max_bytes_in_flight,
            xds_max_requests_per_second=args.xds_max_request_rate,
            drain_duration=args.drain_duration,
            xds_max_connections=args.xds_max_connections,
            xds_handshake_timeout=args.xds_handshake_timeout,
            xds_max_connection_age=args.xds_max_connection_age,
            debug_max_connections=args.debug_max_connections,
            debug_token=_debug_token(args.debug_token_file), manage_memory=True,
        )  # fmt: skip
        client = kube_client(args.kubeconfig) if args.kube else None
        identity = _identity_config(args, client)
        webhook_parts = _webhook_parts(args, mesh, identity)
        source = KubeSource(client, mesh) if client is not None else None
        leader = None
        if client is not None and identity is not None:
            leader = LeaderConfig(client, Names(identity.settings.namespace, args.revision))
    except ValidationError as error:
        sys.stderr.write(f"mizzen control: {describe(error)}\n")
        return 2
    except ValueError as error:  # KubeConfigError included: one line naming the file
        sys.stderr.write(f"mizzen control: {error}\n")
        return 2
    _check_fd_limit(settings, webhook_parts)
    return asyncio.run(_serve(settings, source, webhook_parts, make_plane, identity, leader))


def _check_fd_limit(settings: ControlSettings, webhook: WebhookParts | None) -> None:
    """The fd limit raised to cover every listener's cap plus headroom, or a warning."""
    caps = settings.xds_max_connections + settings.debug_max_connections
    caps += webhook.settings.max_connections if webhook is not None else 0
    limit, enough = raise_fd_limit(caps + 1024)
    if not enough:
        logging.getLogger("mizzen.control").warning(
            "the open-file limit (%d) is below the listeners' connection caps (%d) plus 1024: "
            "lower --xds-max-connections or raise the limit", limit, caps)  # fmt: skip


def _identity_config(args: argparse.Namespace, client: ApiClient | None) -> IdentityConfig | None:
    """The mesh CA's part: with `--ca-dir` (local) or `--kube`; None otherwise (plaintext xDS
    only). Raises ValueError naming the flag."""
    if args.ca_dir is None and not args.kube:
        if args.plugin_ca_dir is not None or args.advertise_address:
            raise ValueError("the CA's flags need --ca-dir (or --kube)")
        return None
    settings = ca_settings(args, kube=args.kube)
    return IdentityConfig(settings, client, args.secure_port, args.ca_port)
