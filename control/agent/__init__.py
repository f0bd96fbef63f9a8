"""The node agent (Istio's pilot-agent): runs in the proxy container.

It reads the pod's identity from the environment the injector set (`settings`), renders Envoy's
bootstrap (`bootstrap`, a pure function), starts and supervises Envoy (`supervisor`), answers the
kubelet's probes (`status`, `probes`) and drains Envoy on SIGTERM (`run`).
"""
