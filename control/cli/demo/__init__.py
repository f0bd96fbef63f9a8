"""`mizzen demo`'s local mesh: the control plane, sample workloads in network namespaces, a
client whose traffic the redirect hands to a real Envoy, and the requests that show the routing.

The end-to-end tests build the same mesh on the test harness's namespaces (`mesh` works on any
object shaped like a pod: `PodHandle`), so the demo shows exactly what the tests prove.
"""
