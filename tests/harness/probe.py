"""Where did a TCP connection land? A stdlib-only script run inside a pod's network namespace.

probe.py serve LABEL:PORT [LABEL:PORT ...] [--ipv6]
    Listens on every PORT (0.0.0.0, and [::] with --ipv6), prints READY once bound, then
    answers each connection with one JSON line and closes it:
    {"label", "port", "local": [ip, port], "peer": [ip, port], "original_dst": [ip, port] | null}
    `original_dst` is SO_ORIGINAL_DST: where the client meant to go before a REDIRECT.
probe.py connect HOST PORT [--source IP] [--uid N] [--gid N] [--timeout S]
    Drops to uid/gid (after Python has started: the venv may be unreadable to them), connects,
    prints the server's JSON line; on failure prints {"error": ...} and exits 1.
"""

from __future__ import annotations

import argparse
import encodings.idna  # noqa: F401  (getaddrinfo needs it; unreadable once we drop to a uid)
import json
import os
import selectors
import socket
import struct
import sys

SO_ORIGINAL_DST = 80  # <linux/netfilter_ipv4.h>; IP6T_SO_ORIGINAL_DST has the same value


def original_dst(conn: socket.socket) -> list[object] | None:
    try:
        if conn.family == socket.AF_INET:
            raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port, packed = struct.unpack_from("!H4s", raw, 2)
            return [socket.inet_ntop(socket.AF_INET, packed), port]
        raw = conn.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
        port, packed = struct.unpack_from("!H4x16s", raw, 2)
        return [socket.inet_ntop(socket.AF_INET6, packed), port]
    except OSError:
        return None  # no conntrack entry


def _listen(family: socket.AddressFamily, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    sock.listen(64)
    return sock


def serve(listeners: list[str], ipv6: bool) -> int:
    selector = selectors.DefaultSelector()
    families = [socket.AF_INET, socket.AF_INET6] if ipv6 else [socket.AF_INET]
    for item in listeners:
        label, _, port = item.rpartition(":")
        for family in families:
            selector.register(_listen(family, int(port)), selectors.EVENT_READ, (label, int(port)))
    print("READY", flush=True)
    while True:
        for key, _ in selector.select():
            label, port = key.data
            listener: socket.socket = key.fileobj  # type: ignore[assignment]
            conn, peer = listener.accept()
            with conn:
                report = {
                    "label": label,
                    "port": port,
                    "local": list(conn.getsockname()[:2]),
                    "peer": list(peer[:2]),
                    "original_dst": original_dst(conn),
                }
                conn.sendall(json.dumps(report).encode() + b"\n")


def connect(host: str, port: int, source: str | None, timeout: float) -> int:
    try:
        bind = (source, 0) if source else None
        with socket.create_connection((host, port), timeout=timeout, source_address=bind) as s:
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    sys.stdout.write(data.decode() if data else json.dumps({"error": "closed without reply"}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve")
    serve_p.add_argument("listeners", nargs="+", metavar="LABEL:PORT")
    serve_p.add_argument("--ipv6", action="store_true")
    connect_p = sub.add_parser("connect")
    connect_p.add_argument("host")
    connect_p.add_argument("port", type=int)
    connect_p.add_argument("--source")
    connect_p.add_argument("--uid", type=int)
    connect_p.add_argument("--gid", type=int)
    connect_p.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    if args.command == "serve":
        return serve(args.listeners, args.ipv6)
    if args.gid is not None:
        os.setgroups([])
        os.setgid(args.gid)
    if args.uid is not None:
        os.setuid(args.uid)
    return connect(args.host, args.port, args.source, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
