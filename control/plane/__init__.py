"""The control plane's process (Istio's istiod, in part): the mesh state (`model`), where it comes
from (`sources`), its translation into Envoy resources and the xDS server (`xds`), the debug
endpoints, metrics and sync status. Assembled into a process by `control.cli` only."""
