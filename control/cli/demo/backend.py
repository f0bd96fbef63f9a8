"""A sample workload: answers every GET with its version (`python -m control.cli.demo.backend`).

The body is the version and a newline, and the `x-version` header repeats it, so a client can
count where each request landed; `x-peer` says which address the connection came from, and
`x-seen-xfcc` repeats the `x-forwarded-client-cert` a server sidecar added (the caller's SPIFFE id).
Standard library only: it runs inside a pod's namespace.
"""

from __future__ import annotations

import argparse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def handler_for(version: str) -> type[BaseHTTPRequestHandler]:
    body = f"{version}\n".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: with Nagle on, the body would wait for the peer's
        # delayed ACK (40 ms a request).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-version", version)
            # Who connected: the client pod, or 127.0.0.6 behind this pod's own sidecar.
            self.send_header("x-peer", self.client_address[0])
            # The caller's identity as its sidecar forwards it (mTLS): shown, capped.
            xfcc = self.headers.get("x-forwarded-client-cert")
            if xfcc:
                self.send_header("x-seen-xfcc", xfcc[:2000].replace("\r", "").replace("\n", ""))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: a thousand requests would flood the demo's output."""

    return Handler


class QuietServer(ThreadingHTTPServer):
    """A peer that resets its connection (an Envoy restarting or draining) is no error worth a
    traceback: its caller reads the backend's stderr only at start-up, and a pipe nobody reads
    would fill up and block every request thread writing to it."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server = QuietServer(("0.0.0.0", args.port), handler_for(args.version))
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
