"""Per-proxy snapshots: immutable, versioned per type and resource, consistent (`snapshot`),
kept and pushed by `snapshot_cache`; versions and nonces that never repeat (`versions`)."""
