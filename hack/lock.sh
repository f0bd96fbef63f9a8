#!/usr/bin/env bash
# Regenerates requirements-lock.txt (hashed, all extras) from pyproject.toml. Needs uv (pip install uv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv pip compile pyproject.toml --extra dev --extra proxy --universal --python-version 3.11 \
    --generate-hashes -o requirements-lock.txt
