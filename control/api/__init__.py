"""The mesh API: pydantic models of the Istio CRDs and their semantic validation (pure)."""
