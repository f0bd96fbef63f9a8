"""The scale benchmark's baseline: the control plane with push scoping and shared translation
off, as a construction of the benchmark's own (the product has no switch for it). Every push
re-translates every proxy on its own and gives every type a new version, so every change reaches
every proxy: what the scoped cache is measured against, in the same run.

    python hack/bench/baseline.py --config-dir DIR [the other flags of `mizzen control`]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from control.cli import control_cmd
from control.cli.control_identity import IdentityConfig
from control.cli.control_process import ControlPlane, ControlSettings
from control.plane.metrics import Metrics
from control.plane.model.state import MeshState
from control.plane.sources.base import ConfigSource
from control.plane.xds.cache.snapshot import Snapshot, build_snapshot
from control.plane.xds.cache.snapshot_cache import SnapshotCache
from control.plane.xds.translate.changes import Change
from control.plane.xds.translate.proxy import Proxy
from control.plane.xds.translate.proxy_resources import inbound_resources, outbound_resources
from control.plane.xds.translate.resources import Resources, merge
from control.plane.xds.translate.shared import MeshTranslation


class UnsharedTranslation(MeshTranslation):
    """Every proxy translated alone, every state from scratch: nothing shared or kept."""

    def fresh(self, state: MeshState) -> MeshTranslation:
        return UnsharedTranslation(state)

    def successor(self, state: MeshState) -> tuple[MeshTranslation, Change]:
        return self.fresh(state), Change(everything=True)

    def for_proxy(self, proxy: Proxy) -> Resources:
        inputs = self.inputs(proxy)
        self.translations += 1
        return merge(
            outbound_resources(self.index, inputs), inbound_resources(inputs.inbound, inputs.policy)
        )


class BaselineCache(SnapshotCache):
    """Every push gives every proxy a new snapshot, every type a new version."""

    def __init__(self, state: MeshState, metrics: Metrics) -> None:
        super().__init__(state, metrics, translation=UnsharedTranslation(state))

    def _snapshot(
        self, previous: Snapshot | None, resources: Resources, version: str, changed_at: float
    ) -> Snapshot | None:
        fresh = build_snapshot(resources, None, version, changed_at, self.packer)
        return dataclasses.replace(fresh, generation=previous.generation + 1 if previous else 1)


def baseline_plane(
    settings: ControlSettings, source: ConfigSource | None, identity: IdentityConfig | None = None
) -> ControlPlane:
    metrics = Metrics()
    cache = BaselineCache(MeshState(mesh=settings.mesh), metrics)
    return ControlPlane(settings, source=source, metrics=metrics, cache=cache, identity=identity)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="baseline", description=__doc__)
    control_cmd.configure(parser)
    return control_cmd.run(parser.parse_args(argv), baseline_plane)


if __name__ == "__main__":
    sys.exit(main())
