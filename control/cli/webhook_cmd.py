"""`mizzen webhook`: serve the admission webhooks (`/inject`, `/validate`) over TLS.

    mizzen webhook --port 15017 --tls-cert FILE --tls-key FILE [--config FILE]
    mizzen webhook --dev-certs DIR [--no-serve]   # self-signed CA + serving pair, prints caBundle

The certificate files are watched and reloaded when they change (a rotated Secret).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from control.cli.settings_files import SettingsFileError, load_injection_config
from injector import InjectionConfig
from webhook import devcerts
from webhook.app import create_app
from webhook.server import serve
from webhook.settings import ServerSettings, WebhookSettings
from webhook.tls import CertificateError, CertificateStore

SERVICE_NAME = "mizzen"


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--host", default="0.0.0.0", help="address to listen on (default: all)")
    add("--port", type=int, default=15017, help="port to listen on (default: 15017; 0: any)")
    add("--tls-cert", type=Path, help="serving certificate chain (PEM), reloaded on change")
    add("--tls-key", type=Path, help="its private key (PEM), reloaded on change")
    add("--config", type=Path, help="injection settings (YAML mapping of camelCase keys)")
    add(
        "--dev-certs",
        type=Path,
        metavar="DIR",
        help="use (creating them if missing) a self-signed CA and serving certificate in DIR "
        "for localhost and the mesh Service's names; prints the caBundle",
    )
    add("--no-serve", action="store_true", help="with --dev-certs: print the caBundle and exit")
    add("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add("--max-connections", type=int, default=1024, metavar="N",
        help="open connections (TLS handshakes included); beyond, closed at accept")  # fmt: skip
    add("--max-concurrent-reviews", type=int, default=256, metavar="N",
        help="reviews read and decided at once; beyond, answered 503 unread")  # fmt: skip


def _dev_certificates(directory: Path, config: InjectionConfig) -> devcerts.DevCertificates:
    found = devcerts.existing(directory)
    if found is not None:
        return found
    names = ["localhost", *devcerts.service_names(SERVICE_NAME, config.mesh_namespace)]
    try:
        return devcerts.issue(directory, names)
    except OSError as error:
        raise UsageError(f"--dev-certs {directory}: {error.strerror}") from None


def _run(args: argparse.Namespace) -> int:
    try:
        config = load_injection_config(args.config)
    except SettingsFileError as error:
        raise UsageError(str(error)) from None
    cert_file, key_file = args.tls_cert, args.tls_key
    if args.dev_certs is not None:
        if cert_file or key_file:
            raise UsageError("--dev-certs makes its own certificate: drop --tls-cert/--tls-key")
        certificates = _dev_certificates(args.dev_certs, config)
        print(certificates.ca_bundle, flush=True)
        if args.no_serve:
            return 0
        cert_file, key_file = certificates.cert_file, certificates.key_file
    elif args.no_serve:
        raise UsageError("--no-serve goes with --dev-certs")
    if cert_file is None or key_file is None:
        raise UsageError("needs --tls-cert and --tls-key, or --dev-certs")
    try:
        settings = ServerSettings(
            host=args.host, port=args.port, cert_file=cert_file, key_file=key_file,
            log_level=args.log_level, max_connections=args.max_connections,
        )  # fmt: skip
        app_settings = WebhookSettings(max_concurrent_reviews=args.max_concurrent_reviews)
    except ValidationError as error:
        first = error.errors()[0]
        flag = str(first["loc"][0]).replace("_", "-")
        raise UsageError(f"--{flag}: {first['msg']}") from None
    store = CertificateStore(settings.cert_file, settings.key_file)
    try:
        store.load()
    except CertificateError as error:
        print(f"mizzen webhook: {error}", file=sys.stderr)
        return 1
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    app = create_app(app_settings, config, readiness=store.ready)
    try:
        serve(app, settings, store)
    except OSError as error:
        print(f"mizzen webhook: cannot listen on {args.host}:{args.port}: {error.strerror}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UsageError as error:
        print(f"mizzen webhook: {error}", file=sys.stderr)
        return 2
