"""The telemetry tests' workload (`python tests/e2e/telemetry_app.py`; standard library only, it
runs inside a pod's namespace): HTTP on 8080 answering 200 (`/code/<n>`: status n) and saying
whether the mesh's peer header reached it (`x-saw-peer-header`), its own metrics at /metrics,
and a TCP echo on 9000."""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PEER_HEADER = "x-mizzen-peer"
METRICS = b"# TYPE app_widgets_total counter\napp_widgets_total 42\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        status = 200
        if self.path == "/metrics":
            body, kind = METRICS, "text/plain; version=0.0.4"
        else:
            body, kind = b"ok\n", "text/plain"
            if self.path.startswith("/code/") and self.path[6:].isdigit():
                status = int(self.path[6:])  # the app's own error, seen by both sidecars
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-saw-peer-header", "yes" if self.headers.get(PEER_HEADER) else "no")
        self.send_header("x-version", "v1")
        self.send_header("x-peer", self.client_address[0])
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def _echo(connection: socket.socket) -> None:
    with connection:
        while data := connection.recv(65536):
            connection.sendall(data)


def tcp_echo(port: int) -> None:
    server = socket.create_server(("0.0.0.0", port))
    while True:
        connection, _ = server.accept()
        threading.Thread(target=_echo, args=(connection,), daemon=True).start()


def main() -> None:
    http_port, tcp_port = int(sys.argv[1]), int(sys.argv[2])
    threading.Thread(target=tcp_echo, args=(tcp_port,), daemon=True).start()
    server = ThreadingHTTPServer(("0.0.0.0", http_port), Handler)
    server.daemon_threads = True
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
