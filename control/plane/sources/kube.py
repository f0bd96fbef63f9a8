"""The `kube` config source: the mesh state from a Kubernetes API server, by list+watch.

One reflector thread per kind (Namespaces, Services, Pods, EndpointSlices, Istio's kinds) keeps a
store current (see `control.plane.kube.reflector`); the asyncio side is told when any store changed
and rebuilds the state with the same `build_state` the file source uses, from the same document
shapes, so nothing downstream can tell the two sources apart. Bursts of events coalesce into one
rebuild, and a rebuild that yields the state already published (a pod's status heartbeat) is not
reported. No state is published before every kind has been listed once, and a broken watch never
empties a store, so the control plane never pushes an empty mesh because the API server went away.

The client is made once at the edge (`kube_client`: a kubeconfig file, or the in-cluster service
account) and passed in, so tests point the source at a fake API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import urllib3

from control.config.mesh_config import MeshConfig
from control.plane.kube.api import KubeApi, KubeApiError
from control.plane.kube.reflector import (
    WATCHED_KINDS,
    Backoff,
    KubeSettings,
    Reflector,
    ResourceKind,
)
from control.plane.model.build import BuildCache, build_state
from control.plane.model.state import ConfigProblem, Document, MeshState
from control.plane.sources.base import log_new_problems
from control.plane.sources.kube_secrets import SecretWatches

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)


class KubeConfigError(ValueError):
    """No usable kubeconfig or in-cluster configuration; the message says which and why."""


class KubeSyncError(RuntimeError):
    """`load()` could not list every kind within the sync timeout."""


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def kube_client(
    kubeconfig: Path | None,
    *,
    context: str | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    environ: Mapping[str, str] | None = None,
) -> ApiClient:
    """The API client: from `kubeconfig` when given, else the pod's service account (in-cluster:
    HTTPS to `KUBERNETES_SERVICE_HOST:PORT`, the server verified against the mounted `ca.crt`, the
    mounted `token` as bearer, re-read as the kubelet rotates it). Parsed once, here at the edge;
    every request then reuses it. `service_account_dir` and `environ` are seams for tests."""
    # Imported here: the package is heavy, and a control plane on --config-dir never needs it.
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.config import ConfigException, load_kube_config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    configuration = Configuration()
    try:
        if kubeconfig is None:
            InClusterConfigLoader(  # type: ignore[no-untyped-call]
                token_filename=str(service_account_dir / "token"),
                cert_filename=str(service_account_dir / "ca.crt"),
                try_refresh_token=True,
                environ=os.environ if environ is None else environ,
            ).load_and_set(configuration)
        else:
            if not kubeconfig.is_file():
                raise KubeConfigError(f"--kubeconfig {kubeconfig}: no such file")
            load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), context=context, client_configuration=configuration
            )
    except KubeConfigError:
        raise
    except ConfigException as error:
        if kubeconfig is None:
            raise KubeConfigError(
                f"no --kubeconfig given and no in-cluster configuration ({error})"
            ) from None
        raise KubeConfigError(f"--kubeconfig {kubeconfig}: {error}") from None
    except Exception as error:  # the loader raises many types (YAML, key, type) for a bad file
        detail = " ".join(str(error).split())  # YAML errors span lines
        raise KubeConfigError(
            f"--kubeconfig {kubeconfig}: unreadable ({type(error).__name__}: {detail})"
        ) from None
    # One long-lived connection per watched kind, plus room for relists: keep them all pooled.
    configuration.connection_pool_maxsize = len(WATCHED_KINDS) + 8 + KubeSettings().max_secrets
    # One quick retry covers a pooled connection the server closed; the reflectors do the rest
    # (with backoff), so a down API server is not hammered nor logged three times per attempt.
    configuration.retries = urllib3.Retry(total=1, backoff_factor=0)
    return ApiClient(configuration)


class KubeSource:
    """Implements `ConfigSource` over the Kubernetes API (list+watch)."""

    def __init__(
        self,
        client: ApiClient,
        mesh: MeshConfig | None = None,
        settings: KubeSettings | None = None,
        kinds: Sequence[ResourceKind] = WATCHED_KINDS,
    ) -> None:
        self.mesh = mesh or MeshConfig()
        self.settings = settings or KubeSettings()
        api = KubeApi(client, self.settings.connect_timeout, self.settings.list_timeout)
        self.host = api.host
        self.reflectors = [Reflector(api, kind, self.settings) for kind in kinds]
        # DestinationRule credentialName: only the Secrets rules name, each watched alone.
        self.secrets = SecretWatches(api, self.settings)
        self._state = MeshState(mesh=self.mesh)
        self._build_lock = threading.Lock()
        # The stores keep an object's dict until it changes, so a rebuild re-parses and
        # re-validates only what an event burst touched (and re-derives only their endpoints).
        self._build_cache = BuildCache()

    def current(self) -> MeshState:
        return self._state

    def problems(self) -> tuple[ConfigProblem, ...]:
        """None of its own: an unreachable API server keeps the last state (and is logged)."""
        return ()

    def load(self) -> MeshState:
        """List every kind once (blocking), retrying until `sync_timeout`; then the state."""
        deadline = time.monotonic() + self.settings.sync_timeout
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        pending = list(self.reflectors)
        while True:
            errors: dict[str, KubeApiError] = {}
            for reflector in pending:
                try:
                    reflector.list_once()
                except KubeApiError as error:
                    errors[reflector.resource.label] = error
            pending = [r for r in pending if r.resource.label in errors]
            if not pending:
                break
            delay = backoff.next()
            if time.monotonic() + delay > deadline:
                detail = "; ".join(f"{label}: {error}" for label, error in errors.items())
                raise KubeSyncError(
                    f"cannot list from the Kubernetes API at {self.host} within "
                    f"{self.settings.sync_timeout:g}s: {detail}"
                )
            log.warning("kubernetes: initial list incomplete (%s); retrying in %.1fs",
                        ", ".join(errors), delay)  # fmt: skip
            time.sleep(delay)
        state = self._build()
        self._publish(state)
        return state

    async def run(self, on_change: Callable[[MeshState], None]) -> None:
        """Start the watch threads; report each new state until cancelled (threads then stop)."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def notify() -> None:  # called from the reflector threads
            with contextlib.suppress(RuntimeError):  # the loop is closing: nobody listens
                loop.call_soon_threadsafe(wake.set)

        for reflector in self.reflectors:
            reflector.start(notify if reflector.resource.feeds_model else lambda: None)
        self.secrets.start(notify)
        wake.set()  # whatever changed between load() and now
        try:
            while True:
                await wake.wait()
                wake.clear()
                if not all(r.synced for r in self.reflectors):
                    continue  # never publish a state some kind has not contributed to yet
                state = await asyncio.to_thread(self._build_if_changed)
                if state is not None:
                    self._publish(state)
                    on_change(state)
        finally:
            for reflector in self.reflectors:
                reflector.stop()
            self.secrets.stop()
            await asyncio.to_thread(self._join, 5.0)

    def _join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for reflector in self.reflectors:
            reflector.join(max(0.0, deadline - time.monotonic()))
        self.secrets.join(max(0.0, deadline - time.monotonic()))

    def documents(self) -> list[Document]:
        """What `build_state` reads: the stored objects of the kinds that feed the model, kind
        by kind in a stable order."""
        return [
            d for r in self.reflectors if r.resource.feeds_model for d in r.documents()
        ]  # fmt: skip

    def _build(self) -> MeshState:
        """The state of the stored objects, with the credentials its DestinationRules name
        (the Secrets they name watched from now on)."""
        with self._build_lock:
            state = build_state(self.documents(), self.mesh, self._build_cache, reads_secrets=True)
            self.secrets.reconcile(state)
            return self.secrets.apply(state)

    def _build_if_changed(self) -> MeshState | None:
        """A new state, or None when it equals the published one (compared off the event loop
        too: a big mesh's states are big)."""
        state = self._build()
        return None if state == self._state else state

    def _publish(self, state: MeshState) -> None:
        log_new_problems(log, self._state, state)
        self._state = state
        log.info("config from kubernetes %s: %s", self.host, state.summary())
