#!/usr/bin/env bash
# The whole test suite: set-up, then ruff, mypy --strict on the packages, and pytest (warnings are
# errors, see pyproject.toml). Extra arguments go to pytest, e.g. `hack/test.sh -m "not netns"`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
hack/setup.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy injector webhook control hack
echo "== pytest"
.venv/bin/pytest "$@"
