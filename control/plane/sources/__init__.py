"""Config sources: where the mesh state comes from, `file` (a watched directory) or `kube`
(list+watch of the Kubernetes API), both behind the `ConfigSource` protocol (`base`)."""
