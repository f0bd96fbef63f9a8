"""Semantic validation of the typed specs, one module per kind, in Istio's words."""
