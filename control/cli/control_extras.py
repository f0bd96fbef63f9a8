"""What `mizzen control` runs beside the control plane once its CA is loaded: the admission
webhooks (their certificate from the mesh CA with `--webhook-cert-dir`, renewed) and, with
`--kube`, the Lease and its duties; and starting the plane so that a stop request is not kept
waiting by a CA that is still loading."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from control.cli.control_process import ControlPlane
from control.cli.webhook_certs import WebhookCertError, webhook_rotator
from webhook.tls import CertificateError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from control.install.names import Names
    from injector import InjectionConfig
    from webhook.server import EmbeddedWebhook
    from webhook.settings import ServerSettings
    from webhook.tls import CertificateStore


@dataclass(frozen=True)
class WebhookParts:
    """What the embedded webhooks need, checked at the edge before anything listens.
    `issued_names`: the certificate is the mesh CA's, issued for these names into the files
    (`--webhook-cert-dir`); empty: the files are given (`--tls-cert`/`--tls-key`)."""

    settings: ServerSettings
    store: CertificateStore
    injection: InjectionConfig
    issued_names: tuple[str, ...] = ()


@dataclass
class SideServices:
    """What runs beside the plane once its CA is loaded: the webhooks (and their certificate's
    renewal) and, with `--kube`, the Lease and its duties."""

    webhook: EmbeddedWebhook | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(
        self,
        plane: ControlPlane,
        webhook_parts: WebhookParts | None,
        leader: LeaderConfig | None,
    ) -> None:
        parts = plane.identity.parts if plane.identity is not None else None
        if webhook_parts is not None:
            if webhook_parts.issued_names:
                assert parts is not None  # --webhook-cert-dir needs the CA (checked at the edge)
                rotator = webhook_rotator(parts.authority, webhook_parts)
                try:
                    await asyncio.to_thread(rotator.ensure)
                    webhook_parts.store.load()
                except (RuntimeError, OSError, CertificateError) as error:
                    raise WebhookCertError(f"--webhook-cert-dir: {error}") from None
                self.tasks.append(asyncio.create_task(rotator.run(), name="webhook-cert"))
            # Imported here: a control plane without the webhooks (the common case outside
            # Kubernetes) does not carry their server's code (~2 MB of RSS)
            from webhook.app import create_app
            from webhook.server import EmbeddedWebhook
            from webhook.settings import WebhookSettings

            app = create_app(
                WebhookSettings(), webhook_parts.injection, readiness=webhook_parts.store.ready
            )
            self.webhook = EmbeddedWebhook(app, webhook_parts.settings, webhook_parts.store)
            self.webhook.start()
        if leader is not None and parts is not None:
            from control.cli.control_leader import build_leadership, pod_name  # --kube only

            leadership = build_leadership(leader.client, parts.authority, leader.names, pod_name())
            self.tasks.append(asyncio.create_task(leadership.run(), name="leadership"))

    async def stop(self) -> None:
        for task in self.tasks:  # the leadership releases its Lease as it ends
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []
        if self.webhook is not None:
            await self.webhook.stop()


@dataclass(frozen=True)
class LeaderConfig:
    client: ApiClient
    names: Names


async def start_or_stop(plane: ControlPlane, stop: asyncio.Event) -> bool:
    """Start the plane unless told to stop meanwhile (the CA can take a while with --kube);
    True when started. Errors of the start propagate."""
    starting = asyncio.create_task(plane.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if starting.done():
        starting.result()
        return True
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return False
