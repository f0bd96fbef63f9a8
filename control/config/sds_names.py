"""The names the agent serves its secrets under and the control plane's TLS contexts ask for
(Istio's): the SDS cluster in the bootstrap, the workload certificate and the mesh roots, and
the `sds_config` by which a TLS context (the bootstrap's or a translated one) reaches them."""

from __future__ import annotations

from typing import Any, Final

SDS_CLUSTER: Final = "sds-grpc"
WORKLOAD_SECRET: Final = "default"  # noqa: S105 (a secret's name)
ROOT_SECRET: Final = "ROOTCA"  # noqa: S105 (a secret's name)


def sds_config() -> dict[str, Any]:
    """The agent's SDS server, through the bootstrap's `sds-grpc` cluster."""
    return {
        "api_config_source": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "set_node_on_first_message_only": True,
            "grpc_services": [{"envoy_grpc": {"cluster_name": SDS_CLUSTER}}],
        },
        "initial_fetch_timeout": "0s",
        "resource_api_version": "V3",
    }
