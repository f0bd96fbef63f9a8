#!/usr/bin/env bash
# Set-up, then mizzen's main job on its embedded default: `mizzen demo` (no cluster needed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
hack/setup.sh
exec .venv/bin/mizzen demo "$@"
