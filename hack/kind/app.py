"""The kind end-to-end test's application, run from the mizzen image itself (Python is there),
so the test pulls no other image. Standard library only.

    python3 app.py http NAME VERSION PORT      # HTTP: {"service", "version"}; /healthz for probes
    python3 app.py tcp PORT                    # TCP echo
    python3 app.py fetch URL COUNT             # COUNT GETs; prints {"versions": {...}, "failed": n}
    python3 app.py check URL COUNT             # fetch, and exit 1 unless every GET was answered
    python3 app.py soak URL SECONDS            # GETs for SECONDS; prints {"ok": n, "failed": n}
    python3 app.py echo HOST PORT              # one TCP round trip; exit 0 when echoed
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve_http(name: str, version: str, port: int) -> None:
    body = json.dumps({"service": name, "version": version}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer(("", port), Handler).serve_forever()


def serve_tcp(port: int) -> None:
    class Echo(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while data := self.rfile.readline(65536):
                self.wfile.write(data)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer(("", port), Echo).serve_forever()


def get(url: str) -> str | None:
    """The version that answered, or None for a failed request."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (test URLs)
            return str(json.loads(response.read()).get("version"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def fetch(url: str, count: int) -> int:
    """Prints what answered; returns how many failed."""
    versions: dict[str, int] = {}
    failed = 0
    for _ in range(count):
        version = get(url)
        if version is None:
            failed += 1
        else:
            versions[version] = versions.get(version, 0) + 1
    print(json.dumps({"versions": versions, "failed": failed}), flush=True)
    return failed


def soak(url: str, seconds: float) -> None:
    ok = failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if get(url) is None:
            failed += 1
        else:
            ok += 1
        time.sleep(0.05)
    print(json.dumps({"ok": ok, "failed": failed}))


def echo(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(b"mizzen\n")
        sys.exit(0 if connection.recv(64) == b"mizzen\n" else 1)


def main(argv: list[str]) -> None:
    mode, args = argv[0], argv[1:]
    if mode == "http":
        serve_http(args[0], args[1], int(args[2]))
    elif mode == "tcp":
        serve_tcp(int(args[0]))
    elif mode == "fetch":
        fetch(args[0], int(args[1]))
    elif mode == "check":
        sys.exit(1 if fetch(args[0], int(args[1])) else 0)
    elif mode == "soak":
        soak(args[0], float(args[1]))
    elif mode == "echo":
        echo(args[0], int(args[1]))
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
