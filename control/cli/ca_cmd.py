"""`mizzen ca`: the mesh CA's operating commands.

- `mizzen ca inspect --ca-dir DIR`: the signing certificate, its chain, the trust bundle, and
  any root rotation under way.
- `mizzen ca rotate-root --ca-dir DIR [--phase add|activate|finish]`: rotate the self-signed
  root in three phases (see `control/plane/ca/root_rotation.py`); without `--phase`, the status.
- `mizzen ca serve --ca-dir DIR [--secure-port 15012]`: the CSR API alone over TLS (a CA
  without a control plane; `mizzen control --ca-dir` serves it on its CA port, 15013).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from control.cli.ca_wiring import add_ca_flags, build_identity, ca_settings, secure_server
from control.identity.files import read_bounded
from control.identity.keys import KeySpec
from control.identity.pem import MAX_BUNDLE_BYTES, PemError, load_certificates, summarize
from control.plane.ca.material import CaMaterialError, load_issuer
from control.plane.ca.root_rotation import PHASES, RotationError, read_state, rotate
from control.plane.ca.store import CaStoreError, DirectorySource


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ca_command", metavar="ACTION", required=True)
    inspect = sub.add_parser("inspect", help="show a CA directory's certificates and state")
    inspect.add_argument("--ca-dir", type=Path, required=True)
    rotate_parser = sub.add_parser("rotate-root", help="rotate the self-signed root, by phases")
    rotate_parser.add_argument("--ca-dir", type=Path, required=True)
    rotate_parser.add_argument("--phase", choices=PHASES, help="the phase to run (default: status)")
    rotate_parser.add_argument(
        "--ca-key-type", choices=("ecdsa", "rsa"), help="the new root's key (default: as the old)"
    )
    serve = sub.add_parser("serve", help="serve the CSR API over TLS")
    add_ca_flags(serve)
    serve.add_argument("--secure-port", type=int, default=15012, help="TLS gRPC port (0: any)")
    serve.add_argument("--kube", action="store_true", help="CA in Secrets, TokenReview")
    serve.add_argument("--kubeconfig", type=Path, help="with --kube (default: in-cluster)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _inspect(directory: Path) -> int:
    try:
        material = DirectorySource(directory).load()
        assert material is not None
        issuer = load_issuer(material)
        state = read_state(directory)
    except (CaStoreError, CaMaterialError, RotationError) as error:
        sys.stderr.write(f"mizzen ca inspect: {error}\n")
        return 1
    out = [f"CA directory: {directory}", "", "signing certificate:"]
    out += ["  " + line for line in summarize(issuer.certificate).lines()]
    out += ["", f"chain to the root ({len(issuer.chain)}):"]
    out += [f"  {i}. {c.subject.rfc4514_string()}" for i, c in enumerate(issuer.chain)]
    out += ["", f"trust bundle ({len(issuer.roots)} root(s)):"]
    for root in issuer.roots:
        out += ["  " + line for line in summarize(root).lines()] + [""]
    out.append(f"root rotation: {state.describe() if state else 'none under way'}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    directory: Path = args.ca_dir
    try:
        if args.phase is None:
            state = read_state(directory)
            if state is None:
                bundle = load_certificates(
                    read_bounded(directory / "root-cert.pem", MAX_BUNDLE_BYTES)
                )
                sys.stdout.write(
                    f"no rotation under way ({len(bundle)} root(s) trusted); "
                    "start one with --phase add\n"
                )
            else:
                sys.stdout.write(state.describe() + "\n")
            return 0
        spec = KeySpec(args.ca_key_type) if args.ca_key_type else None
        after = rotate(directory, args.phase, datetime.now(UTC), spec)
    except (RotationError, CaStoreError, CaMaterialError, PemError, OSError) as error:
        sys.stderr.write(f"mizzen ca rotate-root: {error}\n")
        return 1
    sys.stdout.write((after.describe() if after else "rotation finished: old root dropped") + "\n")
    return 0


async def _serve(args: argparse.Namespace) -> int:
    settings = ca_settings(args, kube=args.kube)
    client = None
    if args.kube:
        from control.plane.sources.kube import kube_client

        client = kube_client(args.kubeconfig)
    try:
        parts = await asyncio.to_thread(build_identity, settings, client, CollectorRegistry())
    except (CaStoreError, CaMaterialError) as error:
        sys.stderr.write(f"mizzen ca serve: {error}\n")
        return 1
    server = secure_server(parts, args.secure_port)
    try:
        port = await server.start()
    except OSError as error:
        sys.stderr.write(f"mizzen ca serve: {error}\n")
        parts.close()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    watcher = asyncio.create_task(parts.authority.watch(settings.reload_interval))
    sys.stdout.write(f"mizzen ca: secure={port}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await server.stop()
        parts.close()
    return 0


def run(args: argparse.Namespace) -> int:
    if args.ca_command == "inspect":
        return _inspect(args.ca_dir)
    if args.ca_command == "rotate-root":
        return _rotate(args)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return asyncio.run(_serve(args))
    except ValueError as error:  # flags (named in the message), KubeConfigError included
        sys.stderr.write(f"mizzen ca serve: {error}\n")
        return 2
