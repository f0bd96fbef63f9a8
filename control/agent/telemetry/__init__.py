"""The agent's telemetry: Istio's standard series made from Envoy's `envoy_istio_*` stats
(`standard`, pure), merged with Envoy's own metrics and the app's into one exposition
(`exposition`, pure; `merge`, the shell that fetches)."""
