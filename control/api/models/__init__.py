"""Istio's CRD specs as frozen pydantic models: camelCase fields, unknown fields refused."""
