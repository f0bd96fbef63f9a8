"""The install's shell: server-side apply of the rendered objects, the wait for the control
plane's rollout and for its leader's `caBundle` on the webhook configurations (until then the API
server cannot call the webhooks, and a `kubectl apply` of a mesh object right after the install
would be refused), and deletion. Every step is printed; nothing is retried behind the user's back
but these polls."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from control.install.resources import SHARED_KINDS, object_path
from control.install.rollout import rollout_of
from control.plane.kube.rest import APPLY_PATCH, KubeError, KubeRest

FIELD_MANAGER = "mizzen"


def describe(obj: dict[str, Any]) -> str:
    metadata = obj["metadata"]
    where = f" -n {metadata['namespace']}" if metadata.get("namespace") else ""
    return f"{obj['kind']}/{metadata['name']}{where}"


class InstallError(Exception):
    """A step failed: the message says which and what to do."""


def apply_all(rest: KubeRest, objects: Sequence[dict[str, Any]], force: bool, out: TextIO) -> None:
    """Server-side apply, in order (field manager `mizzen`)."""
    for obj in objects:
        query = [("fieldManager", FIELD_MANAGER)] + ([("force", "true")] if force else [])
        try:
            before = rest.get(object_path(obj))
            rest.call("PATCH", object_path(obj), query=query, body=obj, content_type=APPLY_PATCH)
        except KubeError as error:
            hint = ""
            if error.conflict:
                hint = " (another manager owns these fields; --force-conflicts takes them over)"
            raise InstallError(f"applying {describe(obj)}: {error}{hint}") from None
        out.write(f"{describe(obj)} {'configured' if before else 'created'}\n")
        out.flush()


@dataclass(frozen=True)
class Waiting:
    timeout: float
    interval: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def poll_until(
    check: Callable[[], tuple[bool, str]],
    waiting: Waiting,
    out: TextIO,
    timed_out: Callable[[str], str],
) -> str:
    """Call `check` every interval until it says done; print each new "waiting" message once (a
    poll that repeats itself would flood the terminal). Returns the last message; InstallError
    with `timed_out(message)` at the deadline. `check` may raise InstallError to stop at once."""
    deadline = waiting.clock() + waiting.timeout
    said = ""
    while True:
        done, message = check()
        if done:
            return message
        if message != said:
            out.write(f"waiting: {message}\n")
            out.flush()
            said = message
        if waiting.clock() >= deadline:
            raise InstallError(timed_out(message))
        waiting.sleep(waiting.interval)


def wait_for_rollout(
    rest: KubeRest, deployment: dict[str, Any], waiting: Waiting, out: TextIO
) -> None:
    """Poll the Deployment until its rollout is done; InstallError on failure or timeout."""

    def check() -> tuple[bool, str]:
        try:
            current = rest.get(object_path(deployment))
        except KubeError as error:
            return False, f"cannot read {describe(deployment)}: {error}"
        if not current:
            return False, f"{describe(deployment)} is gone"
        rollout = rollout_of(current)
        if not rollout.done and rollout.failed:
            raise InstallError(f"rollout failed: {rollout.message}")
        return rollout.done, rollout.message

    metadata = deployment["metadata"]
    message = poll_until(
        check,
        waiting,
        out,
        lambda message: (
            f"rollout not done after {waiting.timeout:g}s: {message} "
            f"(kubectl -n {metadata['namespace']} describe deployment {metadata['name']})"
        ),
    )
    out.write(f"rollout done: {message}\n")


def _unbundled(config: dict[str, Any] | None) -> bool:
    webhooks = (config or {}).get("webhooks") or []
    return not webhooks or not all(
        isinstance(w, dict) and (w.get("clientConfig") or {}).get("caBundle") for w in webhooks
    )


def wait_for_ca_bundles(
    rest: KubeRest,
    configs: Sequence[dict[str, Any]],
    namespace: str,
    waiting: Waiting,
    out: TextIO,
) -> None:
    """Poll the webhook configurations until every webhook has its `caBundle` (patched in by the
    control plane's leader); InstallError on timeout, naming those still without."""

    def check() -> tuple[bool, str]:
        missing = []
        for config in configs:
            try:
                current = rest.get(object_path(config))
            except KubeError:
                current = None
            if _unbundled(current):
                missing.append(describe(config))
        return not missing, f"caBundle not yet on {', '.join(missing)}"

    poll_until(
        check,
        waiting,
        out,
        lambda message: (
            f"{message} after {waiting.timeout:g}s: the control plane's leader patches it "
            f"(kubectl -n {namespace} logs -l app=mizzen)"
        ),
    )
    out.write(f"caBundle set on {len(configs)} webhook configurations by the leader\n")


def delete_all(rest: KubeRest, objects: Sequence[dict[str, Any]], purge: bool, out: TextIO) -> int:
    """Delete in reverse order (the webhooks first, so no pod creation waits on a control plane
    that is going away); shared objects (namespace, CRDs) only when purging. How many were
    deleted."""
    deleted = 0
    for obj in reversed(objects):
        if obj["kind"] in SHARED_KINDS and not purge:
            out.write(f"{describe(obj)} kept (shared; --purge removes it)\n")
            continue
        try:
            rest.call("DELETE", object_path(obj), query=[("propagationPolicy", "Background")])
        except KubeError as error:
            if not error.not_found:
                raise InstallError(f"deleting {describe(obj)}: {error}") from None
            out.write(f"{describe(obj)} already absent\n")
            continue
        deleted += 1
        out.write(f"{describe(obj)} deleted\n")
        out.flush()
    return deleted


def check_addressable(objects: Sequence[dict[str, Any]]) -> None:
    """Every object's API path is known, before the first call (raises UnknownKindError)."""
    for obj in objects:
        object_path(obj)
