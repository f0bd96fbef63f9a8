"""The names the agent serves its secrets under and the control plane's TLS contexts ask for
(Istio's): the SDS cluster in the bootstrap, the workload certificate and the mesh roots."""

from __future__ import annotations

from typing import Final

SDS_CLUSTER: Final = "sds-grpc"
WORKLOAD_SECRET: Final = "default"  # noqa: S105 (a secret's name)
ROOT_SECRET: Final = "ROOTCA"  # noqa: S105 (a secret's name)
