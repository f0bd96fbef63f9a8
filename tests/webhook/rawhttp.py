"""HTTP/1.1 by hand over a raw (TLS) socket, for tests that misbehave on purpose."""

from __future__ import annotations

import ssl


def head(length: int | None = None, extra: str = "") -> bytes:
    framing = (
        "transfer-encoding: chunked\r\n" if length is None else f"content-length: {length}\r\n"
    )
    return (
        f"POST /inject HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
        f"{framing}{extra}\r\n"
    ).encode()


def read_response(connection: ssl.SSLSocket) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response (content-length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    header_block, _, rest = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                  if k.strip().lower() == "content-length")  # fmt: skip
    while len(rest) < length:
        chunk = connection.recv(65536)
        assert chunk
        rest += chunk
    return status, rest[:length]


def wait_closed(connection: ssl.SSLSocket) -> None:
    """Block until the server closes the connection (EOF or reset)."""
    try:
        while connection.recv(65536):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
