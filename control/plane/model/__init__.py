"""The mesh state the control plane translates: services, workloads, their endpoints and the mesh's
configuration, as immutable snapshots built from Kubernetes objects (pure: no I/O)."""
