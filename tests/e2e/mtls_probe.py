"""Run inside a pod (`python -m tests.e2e.mtls_probe MODE ...`), one JSON line out:

- `get URL [--header name:value]...`: one GET on a new connection:
  {"status": 200, "version": ..., "xfcc": ..., "peer": ...} or {"error": "..."}
  ("error" also when the connection closed without an HTTP answer);
- `tls HOST PORT ROOT_FILE [--alpn A]...`: a TLS handshake without a client certificate:
  {"uris": [the server certificate's URI SANs], "alpn": ...} or {"error": "..."};
- `mtls-get URL ROOT CERT KEY [--header name:value]...`: one GET over TLS with a client
  certificate (ALPN `istio-http/1.1`, as a client sidecar offers): {"status": 200, ...};
- `stat PORT NAME_REGEX`: the sum of Envoy admin counters (on 127.0.0.1:PORT) whose name
  matches NAME_REGEX: {"value": N};
- `serve-tls PORT CERT KEY`: an app serving TLS itself (prints READY, answers `tls-app`).
Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import socket
import ssl
import threading
import urllib.request
from urllib.parse import urlsplit


def get(url: str, headers: list[str], timeout: float = 5) -> dict[str, object]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    try:
        sent = dict(h.split(":", 1) for h in headers)
        connection.request("GET", parts.path or "/", headers=sent)
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    finally:
        connection.close()
    return {
        "status": response.status,
        "version": response.getheader("x-version") or "",
        "xfcc": response.getheader("x-seen-xfcc") or "",
        "peer": response.getheader("x-peer") or "",
        "body": body[:300],
    }


def mtls_get(url: str, root: str, cert: str, key: str, headers: list[str]) -> dict[str, object]:
    context = ssl.create_default_context(cafile=root)
    context.check_hostname = False
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["istio-http/1.1"])
    parts = urlsplit(url)
    connection = http.client.HTTPSConnection(
        parts.hostname or "", parts.port or 443, timeout=5, context=context
    )
    try:
        connection.request("GET", parts.path or "/", headers=dict(h.split(":", 1) for h in headers))
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    finally:
        connection.close()
    return {"status": response.status, "version": response.getheader("x-version") or ""}


def tls(host: str, port: int, root: str, alpn: list[str]) -> dict[str, object]:
    context = ssl.create_default_context(cafile=root)
    context.check_hostname = False
    if alpn:
        context.set_alpn_protocols(alpn)
    try:
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            context.wrap_socket(raw) as wrapped,
        ):
            cert = wrapped.getpeercert() or {}
            uris = [v for k, v in cert.get("subjectAltName", ()) if k == "URI"]
            return {"uris": uris, "alpn": wrapped.selected_alpn_protocol()}
    except (OSError, ssl.SSLError) as error:
        return {"error": f"{type(error).__name__}: {error}"}


def stat(port: int, pattern: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        text = response.read().decode()
    total = 0
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if re.search(pattern, name) and value.strip().isdigit():
            total += int(value)
    return {"value": total}


def serve_tls(port: int, cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("0.0.0.0", port))
    print("READY", flush=True)

    def answer(raw: socket.socket) -> None:
        try:
            with context.wrap_socket(raw, server_side=True) as wrapped:
                wrapped.sendall(b"tls-app\n")
        except (OSError, ssl.SSLError):
            pass

    while True:
        raw, _ = listener.accept()
        raw.settimeout(5)
        threading.Thread(target=answer, args=(raw,), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("get")
    g.add_argument("url")
    g.add_argument("--header", action="append", default=[])
    t = sub.add_parser("tls")
    t.add_argument("host")
    t.add_argument("port", type=int)
    t.add_argument("root")
    t.add_argument("--alpn", action="append", default=[])
    m = sub.add_parser("mtls-get")
    for name in ("url", "root", "cert", "key"):
        m.add_argument(name)
    m.add_argument("--header", action="append", default=[])
    s = sub.add_parser("stat")
    s.add_argument("port", type=int)
    s.add_argument("pattern")
    v = sub.add_parser("serve-tls")
    v.add_argument("port", type=int)
    v.add_argument("cert")
    v.add_argument("key")
    args = parser.parse_args()
    if args.mode == "serve-tls":
        serve_tls(args.port, args.cert, args.key)
        return
    if args.mode == "get":
        result = get(args.url, args.header)
    elif args.mode == "mtls-get":
        result = mtls_get(args.url, args.root, args.cert, args.key, args.header)
    elif args.mode == "tls":
        result = tls(args.host, args.port, args.root, args.alpn)
    else:
        result = stat(args.port, args.pattern)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
