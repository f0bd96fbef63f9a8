#!/usr/bin/env bash
# Builds the mesh's image from hack/image/Dockerfile.
#
#   hack/image/build.sh [--tag TAG] [--base IMAGE] [--builder docker|buildah] [--no-cache]
#
# With a Docker engine (docker info works) it uses `docker build`; otherwise Debian's buildah,
# which builds Dockerfiles without a daemon (`buildah bud --isolation chroot`), installed with
# apt-get when missing and root. The base image is a build argument (default
# debian:bookworm-slim); when no registry can be reached, a Debian bookworm base is made with
# debootstrap and imported as localhost/mizzen-base:bookworm (kept for the next builds). Limits
# are passed explicitly (--ulimit nofile=20000:20000): the build's processes do not inherit
# this shell's. The CA bundle the host trusts (MIZZEN_BUILD_CA_BUNDLE, else PIP_CERT, else
# SSL_CERT_FILE, else Debian's /etc/ssl/certs/ca-certificates.crt) is handed to the build's pip
# as a secret, never written into a layer: a network that inspects TLS works as on the host.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

tag="ghcr.io/mizzen-mesh/mizzen:0.1.0"
base=""
builder=""
cache=(--layers)
local_base="localhost/mizzen-base:bookworm"
registry_base="docker.io/library/debian:bookworm-slim"
mirror="${MIZZEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "build.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
        --base) base="${2:?--base needs a value}"; shift 2 ;;
        --builder) builder="${2:?--builder needs docker or buildah}"; shift 2 ;;
        --no-cache) cache=(--no-cache); shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

if [ -z "$builder" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        builder=docker
    else
        builder=buildah
    fi
fi

if [ "$builder" = docker ]; then
    echo "build.sh: docker build ${tag} (base ${base:-$registry_base})" >&2
    DOCKER_BUILDKIT=1 docker build -f hack/image/Dockerfile \
        --build-arg "BASE=${base:-$registry_base}" "${secrets[@]}" \
        --ulimit nofile=20000:20000 -t "$tag" .
    docker image inspect --format '{{.Id}} {{.Size}} bytes' "$tag"
    exit 0
fi
[ "$builder" = buildah ] || die "--builder must be docker or buildah, not ${builder}"

secrets=()
ca_bundle="${MIZZEN_BUILD_CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}"
if [ -n "$ca_bundle" ] && [ -r "$ca_bundle" ]; then
    secrets=(--secret "id=pip-ca,src=${ca_bundle}")
fi

apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "$1 is missing (install Debian's $1, or run as root to have it installed)"
    fi
    echo "build.sh: installing $1 (Debian package)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1") >/dev/null
}
command -v buildah >/dev/null 2>&1 || apt_install buildah

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

make_debootstrap_base() {
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    local work
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' RETURN
    echo "build.sh: making ${local_base} with debootstrap (${mirror})" >&2
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    local container
    container="$(buildah from scratch)"
    buildah add "$container" "$work/rootfs.tar" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd /bin/bash "$container"
    buildah commit --quiet --rm "$container" "$local_base" >/dev/null
}

pull=(--pull=true)
if [ -z "$base" ]; then
    if have_image "$local_base"; then
        base="$local_base"
    elif have_image "$registry_base" \
        || timeout 60 buildah pull --quiet "$registry_base" >/dev/null 2>&1; then
        base="$registry_base"
    else
        echo "build.sh: no registry reachable for ${registry_base}; using debootstrap" >&2
        make_debootstrap_base
        base="$local_base"
    fi
fi
if have_image "$base"; then
    pull=(--pull=never)  # a local base (imported, or already pulled): never ask a registry
fi

image_id() { buildah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true; }
previous="$(image_id "$tag")"

echo "build.sh: buildah bud ${tag} (base ${base})" >&2
buildah bud --isolation chroot --force-rm "${cache[@]}" "${pull[@]}" "${secrets[@]}" \
    --ulimit nofile=20000:20000 \
    --build-arg "BASE=${base}" -f hack/image/Dockerfile -t "$tag" .
current="$(image_id "$tag")"
# The image this tag named before is now untagged: drop it (the layer cache stays).
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    buildah rmi "$previous" >/dev/null 2>&1 || true
fi
echo "build.sh: built ${tag} ${current}"
