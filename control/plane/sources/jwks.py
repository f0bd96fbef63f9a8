"""The control plane's JWKS fetcher (an I/O shell): the keys behind RequestAuthentication
`jwksUri`s (or the issuer's OpenID discovery document) are fetched here, never by the sidecars,
and reach translation as data in `MeshState.jwks`.

Bounded: at most `MAX_BYTES` per document, the rule's `timeout` (default 5 s) per fetch, at most
`MAX_LOCATIONS` locations. Cached: a document is fetched when a rule first names it, then every
`refresh` seconds (Istio: 20 min), and retried every `retry` seconds while it fails; a failed
refresh keeps the last good keys. A location never fetched successfully has no keys, and
translation then makes every token of that issuer fail (never accepted).

`JwksSource` wraps any `ConfigSource`: same states, with `jwks` filled in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from control.api.duration import parse_millis
from control.api.models.security import RequestAuthentication
from control.logsafe import untrusted
from control.plane.model.jwks import DISCOVERY_SUFFIX, JwksDocument, jwks_location
from control.plane.model.state import ConfigProblem, MeshState
from control.plane.sources.base import ConfigSource

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

MAX_BYTES: Final = 256 * 1024
MAX_LOCATIONS: Final = 1000
DEFAULT_TIMEOUT: Final = 5.0


class FetchError(Exception):
    """A JWKS that could not be fetched or is not a key set; the message says why."""


def locations(state: MeshState) -> dict[str, float]:
    """location -> fetch timeout (seconds) for every rule without inline keys."""
    found: dict[str, float] = {}
    for resource in state.other_config:
        if resource.kind != "RequestAuthentication":
            continue
        spec: RequestAuthentication = resource.spec
        for rule in spec.jwt_rules:
            if rule.jwks:
                continue
            location = jwks_location(rule.issuer, rule.jwks_uri)
            if location is not None and len(found) < MAX_LOCATIONS:
                timeout = parse_millis(rule.timeout) / 1000 if rule.timeout else DEFAULT_TIMEOUT
                found[location] = min(found.get(location, timeout), timeout)
    return found


def _short(text: str, limit: int = 200) -> str:
    """Untrusted text (a URL, a server's answer) made safe for a log line."""
    return untrusted(text, limit)


def _get(client: httpx.Client, url: str, timeout: float) -> bytes:
    import httpx  # loaded with the client (`JwksCache.client`)

    deadline = time.monotonic() + timeout
    try:
        with client.stream("GET", url, timeout=timeout) as response:
            if response.status_code != 200:
                raise FetchError(f"HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise FetchError(f"larger than {MAX_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise FetchError(f"took longer than {timeout:g}s")
            return bytes(body)
    except httpx.HTTPError as error:
        raise FetchError(f"{type(error).__name__}: {_short(str(error))}") from error


def _key_set(body: bytes) -> str:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise FetchError("not JSON") from error
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise FetchError('not a JSON Web Key Set ({"keys": [...]})')
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def fetch(client: httpx.Client, location: str, timeout: float) -> str:
    """The key set at `location` (following an OpenID discovery document's `jwks_uri`)."""
    if location.endswith(DISCOVERY_SUFFIX):
        try:
            discovery = json.loads(_get(client, location, timeout))
        except (ValueError, RecursionError) as error:
            raise FetchError("discovery document is not JSON") from error
        uri = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise FetchError("discovery document has no http(s) jwks_uri")
        location = uri
    return _key_set(_get(client, location, timeout))


class JwksCache:
    """Fetch outcomes by location, with their next due time. Not thread-safe: one caller."""

    def __init__(
        self,
        client: httpx.Client | None = None,
        refresh: float = 1200.0,
        retry: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.refresh = refresh
        self.retry = retry
        self.clock = clock
        self.documents: dict[str, JwksDocument] = {}
        self._due: dict[str, float] = {}

    @property
    def client(self) -> httpx.Client:
        """Made at the first fetch: most meshes have no `jwksUri`, and httpx with its TLS
        context (the CA bundle parsed) costs the control plane ~3 MB for nothing then."""
        if self._client is None:
            import httpx

            self._client = httpx.Client(trust_env=False, follow_redirects=False)
        return self._client

    def update(self, wanted: dict[str, float], force: bool = False) -> bool:
        """Fetch what is due among `wanted`, forget the rest; True when anything changed."""
        changed = False
        for gone in set(self.documents) - set(wanted):
            del self.documents[gone]
            self._due.pop(gone, None)
            changed = True
        now = self.clock()
        for location, timeout in sorted(wanted.items()):
            if not force and self._due.get(location, 0.0) > now:
                continue
            before = self.documents.get(location)
            try:
                keys = fetch(self.client, location, timeout)
                after = JwksDocument(location, keys, None)
                self._due[location] = now + self.refresh
            except FetchError as error:
                after = JwksDocument(location, before.keys if before else None, str(error))
                self._due[location] = now + self.retry
                log.warning("JWKS %s: %s", _short(location), error)
            if after != before:
                self.documents[location] = after
                changed = True
        return changed

    def next_due(self) -> float | None:
        return min(self._due.values(), default=None)


class JwksSource:
    """A ConfigSource whose states carry the fetched key sets."""

    def __init__(self, inner: ConfigSource, cache: JwksCache | None = None) -> None:
        self.inner = inner
        self.cache = cache or JwksCache()

    def _with_keys(self, state: MeshState) -> MeshState:
        if not self.cache.documents and not state.jwks:
            return state
        return replace(state, jwks=dict(sorted(self.cache.documents.items())))

    def load(self) -> MeshState:
        state = self.inner.load()
        self.cache.update(locations(state))
        return self._with_keys(state)

    def current(self) -> MeshState:
        return self._with_keys(self.inner.current())

    def problems(self) -> tuple[ConfigProblem, ...]:
        return self.inner.problems()

    async def run(self, on_change: Callable[[MeshState], None]) -> None:
        wake = asyncio.Event()

        def inner_changed(state: MeshState) -> None:
            wake.set()
            on_change(self._with_keys(state))

        async def refresher() -> None:
            while True:
                due = self.cache.next_due()
                delay = 60.0 if due is None else max(0.0, due - self.cache.clock())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=min(delay, 60.0))
                wake.clear()
                wanted = locations(self.inner.current())
                if await asyncio.to_thread(self.cache.update, wanted):
                    on_change(self.current())

        task = asyncio.create_task(refresher(), name="jwks-refresh")
        try:
            await self.inner.run(inner_changed)
        finally:
            task.cancel()
