"""`mizzen proxy-status`: is every connected proxy in sync with the control plane? (istioctl's
`proxy-status`). Reads the control plane's `/debug/syncz` over its debug port and prints one row
per proxy: the state of each xDS type, the newest version sent, the protocol (SotW or Delta) and
when the stream opened. `(!)` marks a proxy whose latest config was refused (error below the
table), `(slow)` one that does not read its stream.

Also home of the small HTTP and table helpers `mizzen proxy-config` shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

DEFAULT_CONTROL = "http://127.0.0.1:15014"
TYPE_COLUMNS = ("cds", "lds", "eds", "rds")
_TIMEOUT = 10.0


class CommandError(Exception):
    """A one-line, user-facing failure (the CLI prints it and exits 1, never a traceback)."""


def fetch_json(base: str, path: str, params: Mapping[str, str] | None = None) -> Any:
    """GET `base + path` and decode JSON; every failure becomes a readable CommandError. A 4xx
    whose body carries {"error": ...} (the debug endpoints' convention) reports that text."""
    url = base.rstrip("/") + path
    try:
        with httpx.Client(trust_env=False, timeout=_TIMEOUT) as client:
            response = client.get(url, params=dict(params or {}))
    except httpx.InvalidURL as error:
        raise CommandError(f"{base!r} is not a valid URL: {error}") from error
    except httpx.UnsupportedProtocol as error:
        raise CommandError(f"{base!r}: give an http:// or https:// URL") from error
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise CommandError(f"cannot reach {base} ({reason})") from error
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        detail = body.get("error") if isinstance(body, dict) else None
        raise CommandError(str(detail) if detail else f"{url}: HTTP {response.status_code}")
    if body is None:
        raise CommandError(f"{url} did not answer with JSON")
    return body


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart (the look of `istioctl`)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def type_state(status: Mapping[str, Any] | None) -> str:
    """One type's sync state, from what was sent, ACKed and NACKed on the stream.

    NOT SENT: nothing of this type yet (not subscribed, or no consistent snapshot);
    SYNCED: the proxy ACKed the latest version sent (and, where the control plane reports its
    `latest` version and `inSync`, that is also its latest config);
    NACKED: the proxy rejected the latest version sent (with its error);
    STALE: sent and not yet ACKed, or ACKed but behind the control plane's latest config."""
    if not status or not status.get("sent"):
        return "NOT SENT"
    sent = status.get("sent")
    if status.get("nacked") == sent:
        error = " ".join(str(status.get("nackError") or "").split())
        return f"NACKED ({_shorten(error, 100)})" if error else "NACKED"
    behind = bool(status.get("latest")) and status.get("inSync") is False
    if status.get("acked") != sent or behind:
        return "STALE"
    return "SYNCED"


def newest_version(types: Mapping[str, Mapping[str, Any]]) -> str:
    """The newest version sent of any type (versions are `<process prefix>-<counter>`)."""
    versions = [str(t["sent"]) for t in types.values() if t.get("sent")]
    if not versions:
        return "-"
    return max(versions, key=_version_order)


def _version_order(version: str) -> tuple[int, str]:
    _, _, counter = version.rpartition("-")
    return (int(counter) if counter.isdigit() else -1, version)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def status_rows(syncz: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for key in sorted(syncz):
        entry = syncz[key]
        if not isinstance(entry, Mapping):
            continue
        raw_types = entry.get("types")
        raw_types = raw_types if isinstance(raw_types, Mapping) else {}
        # Only well-formed entries: an odd server's body must not raise here.
        types = {k: v for k, v in raw_types.items() if isinstance(v, Mapping)}
        row = [str(key)]
        row += [type_state(types.get(name)) for name in TYPE_COLUMNS]
        row += [newest_version(types), str(entry.get("api") or "sotw").upper()]
        row += [str(entry.get("connectedSince") or "-")]
        if entry.get("error"):
            row[0] += " (!)"
        if entry.get("slow"):
            row[0] += " (slow)"
        rows.append(row)
    return rows


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--control", default=DEFAULT_CONTROL, metavar="URL",
        help=f"the control plane's debug address (default {DEFAULT_CONTROL})",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    try:
        syncz = fetch_json(args.control, "/debug/syncz")
        if not isinstance(syncz, Mapping):
            raise CommandError(f"{args.control}/debug/syncz: expected a JSON object")
    except CommandError as error:
        sys.stderr.write(f"mizzen proxy-status: {error}\n")
        return 1
    if not syncz:
        sys.stdout.write("no proxies connected\n")
        return 0
    headers = ["NAME", "CDS", "LDS", "EDS", "RDS", "VERSION", "API", "CONNECTED SINCE"]
    sys.stdout.write(render_table(headers, status_rows(syncz)))
    problems = [
        (key, str(entry["error"]))
        for key, entry in sorted(syncz.items())
        if isinstance(entry, Mapping) and entry.get("error")
    ]
    for key, message in problems:
        sys.stdout.write(f"(!) {key}: {_shorten(' '.join(message.split()), 300)}\n")
    return 0
