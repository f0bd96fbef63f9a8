#!/usr/bin/env bash
# Creates .venv at the repo root and installs the locked dependencies and mizzen (editable).
# Idempotent and quick when nothing changed: the lock's hash is stamped into the venv.
# Also installs iptables (Debian package) when missing and we are root: `mizzen init` and the
# data-path tests need it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "mizzen needs Python >= 3.11 (found: $("$python" --version 2>&1)); set PYTHON=..." >&2
    exit 1
fi

if ! command -v iptables-restore >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing iptables (Debian package)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables iproute2) >/dev/null \
        || echo "setup: could not install iptables; the data-path tests will skip" >&2
fi

# The image test (hack/image/build.sh builds without a Docker engine: buildah, and a debootstrapped
# base when no registry answers) and the shell scripts' lint need these Debian packages.
wanted=()
for tool in shellcheck:shellcheck buildah:buildah debootstrap:debootstrap; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || wanted+=("${tool#*:}")
done
if [ "${#wanted[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${wanted[*]} (Debian packages)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}") \
        >/dev/null || echo "setup: could not install ${wanted[*]}; the image test will fail" >&2
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
