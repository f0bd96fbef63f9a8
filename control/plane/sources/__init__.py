"""Config sources: where the mesh state comes from (`file` now; `kube` in a later issue)."""
