"""Control planes whose translation is a test's own function (a broken one, one that can be made
to produce an inconsistent snapshot, ...), through the snapshot cache's one seam: the
`MeshTranslation` it is given."""

from __future__ import annotations

from collections.abc import Callable

from control.cli.control_process import ControlPlane, ControlSettings
from control.plane.metrics import Metrics
from control.plane.model.state import MeshState
from control.plane.xds.cache.snapshot_cache import SnapshotCache
from control.plane.xds.translate.changes import Change
from control.plane.xds.translate.proxy import Proxy
from control.plane.xds.translate.resources import Resources
from control.plane.xds.translate.shared import MeshTranslation

Translate = Callable[[MeshState, Proxy], Resources]


class FunctionTranslation(MeshTranslation):
    """Every proxy translated by `function`, every state from scratch, nothing shared."""

    def __init__(self, state: MeshState, function: Translate) -> None:
        super().__init__(state)
        self.function = function

    def fresh(self, state: MeshState) -> MeshTranslation:
        return FunctionTranslation(state, self.function)

    def successor(self, state: MeshState) -> tuple[MeshTranslation, Change]:
        return self.fresh(state), Change(everything=True)

    def for_proxy(self, proxy: Proxy) -> Resources:
        return self.function(self.state, proxy)


def plane_translating_with(settings: ControlSettings, function: Translate) -> ControlPlane:
    metrics = Metrics()
    state = MeshState(mesh=settings.mesh)
    cache = SnapshotCache(state, metrics, translation=FunctionTranslation(state, function))
    return ControlPlane(settings, metrics=metrics, cache=cache)
