"""The Secrets DestinationRules name in `credentialName`, read from the Kubernetes API for the
`kube` source, and nothing else of the cluster's Secrets.

Which Secrets: those a DestinationRule with a `workloadSelector` names in a SIMPLE or MUTUAL
`tls` (only such a rule applies a `credentialName` to sidecars), in the rule's own namespace,
plus the optional `<name>-cacert`. Each is watched alone: a list+watch of its namespace with
`fieldSelector=metadata.name=<name>`, so the control plane never lists another Secret, never
reads one of another namespace, and needs only get/list/watch on Secrets. At most
`KubeSettings.max_secrets` are watched; a rule beyond that is refused (a config problem).

What reaches the state (`MeshState.credentials`): the last good credential of each name. A
Secret that turns invalid keeps its last good version (a problem says so, naming the rule's
field); one never valid, missing or deleted has none, and the clusters that name it fail
closed (translation refuses them: never plaintext, never without the certificate).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from control.api.models.destination_rule import DestinationRule
from control.api.registry import MeshResource
from control.plane.kube.api import KubeApi, KubeApiError
from control.plane.kube.reflector import KubeSettings, Reflector, ResourceKind
from control.plane.model.credentials import (
    CA_SUFFIX,
    Credential,
    CredentialError,
    parse_secret,
    secret_name_problem,
)
from control.plane.model.state import ConfigProblem, MeshState, ObjectKey
from control.plane.model.unsupported import tls_settings

log = logging.getLogger(__name__)

Use = tuple[MeshResource[DestinationRule], str, str]  # (rule, field path, tls mode)


def referenced(state: MeshState) -> dict[ObjectKey, list[Use]]:
    """(namespace, Secret name) -> the rule fields that name it, for the rules that apply a
    `credentialName` to sidecars (a `workloadSelector`; SIMPLE or MUTUAL)."""
    found: dict[ObjectKey, list[Use]] = {}
    for rule in state.destination_rules:
        if rule.spec.workload_selector is None:
            continue
        namespace = rule.namespace or "default"
        for path, tls in tls_settings(rule.spec):
            if tls.credential_name and tls.mode in ("SIMPLE", "MUTUAL"):
                key = (namespace, tls.credential_name)
                found.setdefault(key, []).append((rule, f"{path}.credentialName", tls.mode))
    return found


def secret_kind(namespace: str, name: str) -> ResourceKind:
    """One Secret, by name, in its namespace."""
    return ResourceKind(
        "", ("v1",), "secrets", "Secret", feeds_model=False,
        namespace=namespace, field_selector=f"metadata.name={name}",
    )  # fmt: skip


class SecretWatches:
    """A reflector per referenced Secret (and its `-cacert`), reconciled with every state;
    the credentials made of them, last good kept. Thread-safe (builds run in threads)."""

    def __init__(
        self,
        api: KubeApi,
        settings: KubeSettings,
        reflector: Callable[[KubeApi, ResourceKind, KubeSettings], Reflector] = Reflector,
    ) -> None:
        self.api = api
        self.settings = settings
        self._make = reflector
        self._lock = threading.Lock()
        self._reflectors: dict[ObjectKey, Reflector] = {}
        self._good: dict[ObjectKey, Credential] = {}
        # The last parse of each Secret: its data, its -cacert's data, what they made. Every
        # state build (any change in the cluster) asks for every credential, and a parse checks
        # the private key (~0.25 s for an RSA-4096 key; 256 Secrets: a minute per build).
        self._parsed: dict[ObjectKey, tuple[object, object, Credential | CredentialError]] = {}
        self._notify: Callable[[], None] | None = None  # set while running

    @property
    def reflectors(self) -> list[Reflector]:
        with self._lock:
            return list(self._reflectors.values())

    def start(self, notify: Callable[[], None]) -> None:
        """Watch from now on (each new Secret's first list runs in its own thread)."""
        with self._lock:
            self._notify = notify
            for reflector in self._reflectors.values():
                if not reflector.running:
                    reflector.start(notify)

    def stop(self) -> None:
        with self._lock:
            self._notify = None
            for reflector in self._reflectors.values():
                reflector.stop()

    def join(self, timeout: float) -> None:
        for reflector in self.reflectors:
            reflector.join(timeout)

    def _wanted(self, uses: Mapping[ObjectKey, list[Use]]) -> tuple[set[ObjectKey], set[ObjectKey]]:
        """(Secrets to watch, credentials beyond the limit)."""
        wanted: set[ObjectKey] = set()
        refused: set[ObjectKey] = set()
        for namespace, name in sorted(uses):
            if secret_name_problem(name) is not None:
                continue  # never asked for (`apply` says why)
            pair = {(namespace, name), (namespace, name + CA_SUFFIX)}
            if len(wanted | pair) > self.settings.max_secrets:
                refused.add((namespace, name))
            else:
                wanted |= pair
        return wanted, refused

    def reconcile(self, state: MeshState) -> bool:
        """Watch what `state`'s rules name, stop watching the rest. Before `start`, new
        Secrets are listed here at once (blocking; a failure leaves them unread). True when a
        Secret was added or dropped."""
        wanted, _ = self._wanted(referenced(state))
        with self._lock:
            gone = set(self._reflectors) - wanted
            for key in gone:
                self._reflectors.pop(key).stop()
            added = [k for k in sorted(wanted) if k not in self._reflectors]
            for key in added:
                reflector = self._make(self.api, secret_kind(*key), self.settings)
                self._reflectors[key] = reflector
                if self._notify is not None:
                    reflector.start(self._notify)
            self._good = {k: v for k, v in self._good.items() if k in wanted}
            self._parsed = {k: v for k, v in self._parsed.items() if k in wanted}
            running = self._notify is not None
        if not running:
            for key in added:
                self._list(key)
        return bool(gone or added)

    def _list(self, key: ObjectKey) -> None:
        with self._lock:
            reflector = self._reflectors.get(key)
        if reflector is None:
            return
        try:
            reflector.list_once()
        except KubeApiError as error:
            log.warning("kubernetes: Secret %s/%s: %s", key[0], key[1], error)

    def _object(self, key: ObjectKey) -> tuple[bool, dict[str, Any] | None]:
        """(listed at least once, the Secret or None)."""
        with self._lock:
            reflector = self._reflectors.get(key)
        if reflector is None or not reflector.synced:
            return False, None
        for document in reflector.documents():  # the field selector's one (checked again)
            obj = document.obj
            if isinstance(obj, dict) and obj["metadata"].get("name") == key[1]:
                return True, obj
        return True, None

    def apply(self, state: MeshState) -> MeshState:
        """`state` with the credentials its rules name, and a problem per rule field whose
        Secret is missing, invalid or (MUTUAL) without a certificate."""
        uses = referenced(state)
        _, refused = self._wanted(uses)
        problems: list[ConfigProblem] = []
        credentials: dict[ObjectKey, Credential] = {}
        for key in sorted(uses):
            namespace, name = key
            not_a_name = secret_name_problem(name)
            if not_a_name is not None:
                problems += _problems(uses[key], f"{not_a_name}: connections fail", "error")
                continue
            if key in refused:
                why = f"more than {self.settings.max_secrets} Secrets referenced; not read"
                problems += _problems(uses[key], f"Secret {namespace}/{name}: {why}", "error")
                continue
            credential, error = self._credential(key)
            if credential is not None:
                credentials[key] = credential
            if error is not None:
                severity = "warning" if credential is not None else "error"
                problems += _problems(uses[key], f"Secret {namespace}/{name}: {error}", severity)
            if credential is not None and not credential.key_pair:
                mutual = [u for u in uses[key] if u[2] == "MUTUAL"]
                message = (
                    f"Secret {namespace}/{name} has no certificate and key (tls.crt/tls.key or "
                    "cert/key): MUTUAL connections under this setting fail"
                )
                problems += _problems(mutual, message, "error")
        if not credentials and not problems and not state.credentials:
            return state
        return dataclasses.replace(
            state,
            credentials=MappingProxyType(credentials),
            problems=(*state.problems, *problems),
        )

    def _credential(self, key: ObjectKey) -> tuple[Credential | None, str | None]:
        """(the credential to serve, what is wrong with the Secret now)."""
        namespace, name = key
        listed, secret = self._object(key)
        _, ca_secret = self._object((namespace, name + CA_SUFFIX))
        with self._lock:
            if not listed:
                return self._good.get(key), "not read yet (is get/list/watch on secrets granted?)"
            if secret is None:
                self._good.pop(key, None)  # deleted: nothing to serve (fail closed)
                return None, "not found: connections under this setting fail"
            parsed = self._parse(key, secret, ca_secret)
            if isinstance(parsed, CredentialError):
                error, kept = parsed, self._good.get(key)
                tail = "; its last good version is kept" if kept else ": connections fail"
                return kept, f"{error}{tail}"
            self._good[key] = parsed
            return parsed, None

    def _parse(
        self, key: ObjectKey, secret: dict[str, Any], ca_secret: dict[str, Any] | None
    ) -> Credential | CredentialError:
        """`parse_secret`'s outcome, made again only when either Secret's data changed."""
        data, ca_data = secret.get("data"), None if ca_secret is None else ca_secret.get("data")
        last = self._parsed.get(key)
        if last is not None and last[0] == data and last[1] == ca_data:
            return last[2]
        try:
            parsed: Credential | CredentialError = parse_secret(secret, ca_secret)
        except CredentialError as error:
            parsed = error.with_traceback(None)
        self._parsed[key] = (data, ca_data, parsed)
        return parsed


def _problems(uses: list[Use], message: str, severity: str) -> list[ConfigProblem]:
    return [
        ConfigProblem(
            f"kubernetes: destinationrules/{rule.namespace or 'default'}/{rule.name}",
            "DestinationRule",
            rule.name,
            f"{path}: {message}",
            severity,
        )
        for rule, path, _ in uses
    ]
