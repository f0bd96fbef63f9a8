"""`mizzen control`: the control plane (xDS over gRPC, debug endpoints) on a config directory
or, with `--kube`, on the Kubernetes API; with `--tls-cert`/`--tls-key` it also serves the
admission webhooks, so one process does what istiod does."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from control.cli.control_process import ControlPlane, ControlSettings
from control.cli.settings_files import injection_for_mesh, load_injection_config
from control.config.files import FileReadError, read_text
from control.config.mesh_config import MeshConfig, load_mesh_config
from control.config.settings import describe
from control.plane.sources.base import ConfigSource
from control.plane.sources.file import FileLimits
from control.plane.sources.kube import KubeSource, KubeSyncError, kube_client
from control.plane.xds.ads.stream import StreamLimits
from control.serving.grpc_limits import GrpcLimits
from control.serving.limits import raise_fd_limit
from injector import InjectionConfig
from webhook.app import create_app
from webhook.server import EmbeddedWebhook
from webhook.settings import ServerSettings, WebhookSettings
from webhook.tls import CertificateError, CertificateStore


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
    parser.add_argument("--xds-port", type=_port, default=15010, help="ADS gRPC port (0: any)")
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
        "--injection-config", type=Path, help="injection settings (YAML, camelCase keys)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


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


@dataclass(frozen=True)
class WebhookParts:
    """What the embedded webhooks need, checked at the edge before anything listens."""

    settings: ServerSettings
    store: CertificateStore
    injection: InjectionConfig


def _webhook_parts(args: argparse.Namespace, mesh: MeshConfig) -> WebhookParts | None:
    """None when no certificate is given; raises ValueError naming the flag otherwise."""
    if args.tls_cert is None and args.tls_key is None:
        if args.injection_config is not None:
            raise ValueError("--injection-config needs --tls-cert and --tls-key (the webhooks)")
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise ValueError("the webhooks need both --tls-cert and --tls-key")
    injection = injection_for_mesh(
        mesh, load_injection_config(args.injection_config, "--injection-config"),
        "--injection-config",
    )  # fmt: skip
    settings = ServerSettings(
        port=args.webhook_port, cert_file=args.tls_cert, key_file=args.tls_key,
        log_level=args.log_level,
    )  # fmt: skip
    store = CertificateStore(settings.cert_file, settings.key_file)
    try:
        store.load()
    except CertificateError as error:
        raise ValueError(f"--tls-cert/--tls-key: {error}") from None
    return WebhookParts(settings, store, injection)


PlaneFactory = Callable[[ControlSettings, ConfigSource | None], ControlPlane]


def _plane(settings: ControlSettings, source: ConfigSource | None) -> ControlPlane:
    return ControlPlane(settings, source=source)


async def _serve(
    settings: ControlSettings,
    source: ConfigSource | None = None,
    webhook_parts: WebhookParts | None = None,
    make_plane: PlaneFactory = _plane,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    plane = make_plane(settings, source)
    webhook: EmbeddedWebhook | None = None
    try:
        await plane.start()
        if webhook_parts is not None:
            app = create_app(
                WebhookSettings(), webhook_parts.injection, readiness=webhook_parts.store.ready
            )
            webhook = EmbeddedWebhook(app, webhook_parts.settings, webhook_parts.store)
            webhook.start()
    except OSError as error:
        sys.stderr.write(f"mizzen control: cannot listen: {error}\n")
        await plane.stop()
        return 1
    except KubeSyncError as error:  # the initial list failed (unreachable, forbidden, ...)
        sys.stderr.write(f"mizzen control: {error}\n")
        await plane.stop()
        return 1
    serving = f"xds={plane.xds_port} debug={plane.debug_port}"
    if webhook is not None:
        serving += f" webhook={webhook.port}"
    sys.stdout.write(f"mizzen control: {serving}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        if webhook is not None:
            await webhook.stop()
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
            xds_port=args.xds_port, debug_port=args.debug_port, mesh=mesh,
            config_max_file_bytes=args.config_max_file_bytes,
            config_max_documents=args.config_max_documents,
            xds_max_message_bytes=args.xds_max_message_bytes, xds_max_names=args.xds_max_names,
            xds_max_requests_per_second=args.xds_max_request_rate,
            xds_max_connections=args.xds_max_connections,
            xds_handshake_timeout=args.xds_handshake_timeout,
            xds_max_connection_age=args.xds_max_connection_age,
            debug_max_connections=args.debug_max_connections,
            debug_token=_debug_token(args.debug_token_file),
        )  # fmt: skip
        webhook_parts = _webhook_parts(args, mesh)
        source = KubeSource(kube_client(args.kubeconfig), mesh) if args.kube else None
    except ValidationError as error:
        sys.stderr.write(f"mizzen control: {describe(error)}\n")
        return 2
    except ValueError as error:  # KubeConfigError included: one line naming the file
        sys.stderr.write(f"mizzen control: {error}\n")
        return 2
    _check_fd_limit(settings, webhook_parts)
    return asyncio.run(_serve(settings, source, webhook_parts, make_plane))


def _check_fd_limit(settings: ControlSettings, webhook: WebhookParts | None) -> None:
    """The fd limit raised to cover every listener's cap plus headroom, or a warning."""
    caps = settings.xds_max_connections + settings.debug_max_connections
    caps += webhook.settings.max_connections if webhook is not None else 0
    limit, enough = raise_fd_limit(caps + 1024)
    if not enough:
        logging.getLogger("mizzen.control").warning(
            "the open-file limit (%d) is below the listeners' connection caps (%d) plus 1024: "
            "lower --xds-max-connections or raise the limit", limit, caps)  # fmt: skip
