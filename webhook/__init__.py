"""Admission webhooks: `/inject` (mutating) and `/validate` (mesh CRDs)."""
