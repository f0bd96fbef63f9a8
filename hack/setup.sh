#!/usr/bin/env bash
# Creates .venv at the repo root and installs the locked dependencies and mizzen (editable).
# Idempotent and quick when nothing changed: the lock's hash is stamped into the venv.
# Also installs, as root with apt, the system packages the tests need when missing (see below).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "mizzen needs Python >= 3.11 (found: $("$python" --version 2>&1)); set PYTHON=..." >&2
    exit 1
fi

# System packages the tests need, installed when missing (root + apt only; each is looked up
# by the command it provides): iptables/iproute2 (the redirect and data-path tests), prometheus
# (with promtool: the telemetry tests), wrk and hey (native load generators of the benchmarks),
# the linter of the shell scripts, buildah and debootstrap (the image test builds without a
# Docker engine, from a debootstrapped base when no registry answers).
missing=()
for tool in iptables-restore:iptables ip:iproute2 prometheus:prometheus wrk:wrk hey:hey \
    shellcheck:shellcheck buildah:buildah debootstrap:debootstrap; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} (Debian packages)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}") >/dev/null \
        || echo "setup: could not install ${missing[*]}; tests that need them will fail" >&2
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.mizzen-lock-$(sha256sum requirements-lock.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    # (A machine-wide pip.conf may name local indexes that do not exist: drop that noise.)
    pip_install() {
        .venv/bin/python -m pip install -q --disable-pip-version-check "$@" \
            2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    }
    pip_install --require-hashes --no-deps -r requirements-lock.txt
    pip_install --no-deps --no-build-isolation -e .
    rm -f .venv/.mizzen-lock-*
    touch "$stamp"
fi
