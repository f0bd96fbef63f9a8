"""Talking to the Kubernetes API, shared by the parts of the control plane that do: the `kube`
config source, the leader's Lease and duties, the CA's Secret store, `mizzen install`. `api`: the
client and its calls; `reflector`: list + watch that survives outages; `rest`: plain REST calls
(get, create, apply, patch)."""
