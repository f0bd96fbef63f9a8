#!/usr/bin/env bash
# The mesh on a real Kubernetes cluster (kind), end to end. For users and CI runners with Docker.
#
#   hack/kind-e2e.sh [--dry-run] [--keep] [--cluster NAME] [--image TAG]
#
# Creates a kind cluster, builds the image and loads it into the cluster, runs `mizzen install`,
# labels a namespace istio-injection=enabled and deploys a bookinfo-like application (probes, a
# Job that must complete with the native sidecar, a TCP service), then asserts: every pod
# injected and Ready; an 80/20 split observed; STRICT mTLS refusing a plaintext client from an
# unlabelled namespace (which got through before); an AuthorizationPolicy denial (of a call
# that succeeded before); a metric scraped from a sidecar; an invalid VirtualService refused by
# `kubectl apply`; a control-plane rollout restart under continuous traffic with no failed
# request; `mizzen proxy-status` all SYNCED. Then it deletes the cluster (--keep leaves it).
# Each step is printed; the first failure prints diagnostics (pods, events, mesh objects,
# `kubectl describe` and logs of the control plane and the failing pods) and exits 1. Exit 3: a
# tool is missing (docker with a running engine, kind, kubectl). --dry-run prints the plan.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cluster="mizzen-e2e"
image="localhost/mizzen:e2e"
dry_run=0
keep=0
ns="bookinfo"
mesh_ns="mizzen-system"
kubeconfig=""

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1; shift ;;
        --keep) keep=1; shift ;;
        --cluster) cluster="${2:?--cluster needs a name}"; shift 2 ;;
        --image) image="${2:?--image needs a tag}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; echo "kind-e2e: unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$cluster" in
    *[!a-z0-9-]*|"") echo "kind-e2e: --cluster must be lowercase letters, digits and dashes" >&2; exit 2 ;;
esac

STEPS=(
    "preflight: docker engine, kind, kubectl, the venv's mizzen"
    "create the kind cluster ${cluster}"
    "build the image ${image} and kind load it"
    "mizzen install (image ${image}): the rollout and the leader's caBundle"
    "deploy the application into namespace ${ns} (istio-injection=enabled) and outside"
    "every pod injected and Ready; the Job completes with the native sidecar"
    "TCP through the mesh"
    "an 80/20 weighted split observed"
    "an invalid VirtualService refused by kubectl apply"
    "before the policies: the plaintext client and client -> ratings are answered"
    "STRICT mTLS refuses a plaintext client from an unlabelled namespace"
    "AuthorizationPolicy denies the client on ratings"
    "a metric scraped from a sidecar"
    "control-plane rollout restart under traffic: no failed request"
    "mizzen proxy-status: every proxy SYNCED"
    "delete the cluster"
)
if [ "$dry_run" = 1 ]; then
    echo "kind-e2e plan (cluster ${cluster}, image ${image}):"
    for i in "${!STEPS[@]}"; do printf '  %2d. %s\n' "$((i + 1))" "${STEPS[$i]}"; done
    exit 0
fi

missing() { echo "kind-e2e: $1" >&2; exit 3; }
command -v docker >/dev/null 2>&1 || missing "docker is not installed (kind runs its nodes as Docker containers)"
docker info >/dev/null 2>&1 || missing "docker is installed but its engine is not running or not reachable (docker info fails)"
command -v kind >/dev/null 2>&1 || missing "kind is not installed (https://kind.sigs.k8s.io/docs/user/quick-start/)"
command -v kubectl >/dev/null 2>&1 || missing "kubectl is not installed"
[ -x .venv/bin/mizzen ] || hack/setup.sh
mizzen=(.venv/bin/mizzen)
py=.venv/bin/python  # the checks below parse JSON with the venv's Python, not the host's

step_no=0
step() { step_no=$((step_no + 1)); printf '\n==> [%d/%d] %s\n' "$step_no" "${#STEPS[@]}" "$1"; }
k() { kubectl --kubeconfig "$kubeconfig" "$@"; }

diagnose() {
    echo "kind-e2e: step ${step_no} failed; diagnostics follow" >&2
    [ -n "$kubeconfig" ] && [ -f "$kubeconfig" ] || return 0
    k get pods -A -o wide >&2 || true
    k get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -30 >&2 || true
    k -n "$mesh_ns" describe deployment mizzen >&2 || true
    k get virtualservices,destinationrules,peerauthentications,authorizationpolicies -A >&2 || true
    k -n "$mesh_ns" logs -l app=mizzen --all-containers --tail=80 --prefix >&2 || true
    local pod
    # Pods not Running (or Completed), not all Ready, or restarted: described, with their logs.
    for pod in $(k get pods -A --no-headers 2>/dev/null | awk '{split($3, r, "/")}
            ($4 != "Running" && $4 != "Completed") || r[1] != r[2] && $4 != "Completed" || $5 + 0 > 0 {
                print $1 "/" $2 }'); do
        k -n "${pod%%/*}" describe pod "${pod#*/}" >&2 || true
        k -n "${pod%%/*}" logs "${pod#*/}" --all-containers --tail=40 --prefix >&2 || true
    done
}
deleted=0
cleanup() {
    local status=$?
    [ "$status" = 0 ] || diagnose
    if [ "$keep" = 0 ] && [ "$deleted" = 0 ] && kind get clusters 2>/dev/null | grep -qx "$cluster"; then
        echo "==> delete the cluster ${cluster}"
        kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
    fi
    [ -z "$kubeconfig" ] || rm -f "$kubeconfig"
    if [ "$status" = 0 ]; then
        echo "kind-e2e: all steps passed"
    else
        echo "kind-e2e: FAILED at step ${step_no}: ${STEPS[$((step_no - 1))]:-preflight}" >&2
    fi
}
trap cleanup EXIT
fail() { echo "kind-e2e: $*" >&2; exit 1; }
# Retry a check for up to $1 seconds (the mesh's configuration reaches proxies in moments).
eventually() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 2
    done
}

step "${STEPS[0]}"
"${mizzen[@]}" --help >/dev/null

step "${STEPS[1]}"
kubeconfig="$(mktemp)"
kind create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 180s

step "${STEPS[2]}"
hack/image/build.sh --builder docker --tag "$image"
kind load docker-image "$image" --name "$cluster"

step "${STEPS[3]}"
"${mizzen[@]}" install --kubeconfig "$kubeconfig" --image "$image" \
    --set imagePullPolicy=Never --timeout 300

step "${STEPS[4]}"
k create namespace "$ns"
k label namespace "$ns" istio-injection=enabled
k create namespace outside
for target in "$ns" outside; do
    k -n "$target" create configmap app --from-file=app.py=hack/kind/app.py
done
with_image() { local text; text="$(cat "$1")"; printf '%s\n' "${text//@IMAGE@/$image}"; }
with_image hack/kind/bookinfo.yaml | k -n "$ns" apply -f -
for target in "$ns" outside; do
    with_image hack/kind/client.yaml | k -n "$target" apply -f -
done
k -n "$ns" apply -f hack/kind/mesh.yaml

step "${STEPS[5]}"
for deployment in productpage-v1 reviews-v1 reviews-v2 ratings-v1 tcp-echo client; do
    k -n "$ns" rollout status "deployment/${deployment}" --timeout=180s
done
k -n outside rollout status deployment/client --timeout=180s
k -n "$ns" wait --for=condition=complete job/smoke --timeout=180s
# In the labelled namespace every pod has the proxy, the Job's as a native sidecar (an init
# container that keeps running: restartPolicy Always); in the unlabelled one none has.
k -n "$ns" get pods -o json | "$py" -c '
import json, sys
bad = []
for pod in json.load(sys.stdin)["items"]:
    spec, name = pod["spec"], pod["metadata"]["name"]
    native = [c for c in spec.get("initContainers", []) if c["name"] == "mizzen-proxy"]
    plain = [c for c in spec["containers"] if c["name"] == "mizzen-proxy"]
    if not native and not plain:
        bad.append(name + ": not injected")
    if name.startswith("smoke-") and not (native and native[0].get("restartPolicy") == "Always"):
        bad.append(name + ": the proxy is not a native sidecar")
sys.exit("; ".join(bad))' || fail "injection"
k -n outside get pods -o json | "$py" -c '
import json, sys
for pod in json.load(sys.stdin)["items"]:
    spec = pod["spec"]
    if any(c["name"] == "mizzen-proxy" for c in spec.get("initContainers", []) + spec["containers"]):
        sys.exit(pod["metadata"]["name"] + " in the unlabelled namespace was injected")' \
    || fail "injection outside the labelled namespace"
k -n "$ns" wait --for=condition=Ready pod -l 'app notin (smoke)' --timeout=120s
app() { k -n "$1" exec deploy/client -c app -- python3 /app/app.py "${@:2}"; }
# `answered NS URL COUNT all|none`: COUNT GETs from the client in NS; all answered, or none.
answered() {
    local seen
    seen="$(app "$1" fetch "$2" "$3")" || return 1
    echo "  ${1} -> ${2}: ${seen}"
    "$py" -c '
import json, sys
seen, want = json.loads(sys.argv[1]), sys.argv[2]
total = seen["failed"] + sum(seen["versions"].values())
sys.exit(0 if seen["failed"] == (0 if want == "all" else total) else 1)' "$seen" "$4"
}

step "${STEPS[6]}"
eventually 30 app "$ns" echo tcp-echo 9000 || fail "no TCP echo through the mesh"

step "${STEPS[7]}"
split="$(app "$ns" fetch http://reviews:9080/ 200)"
echo "$split"
"$py" - "$split" <<'PY' || fail "the 80/20 split was not observed"
import json, sys
seen = json.loads(sys.argv[1])
v1, v2 = seen["versions"].get("v1", 0), seen["versions"].get("v2", 0)
assert seen["failed"] == 0 and v1 + v2 == 200, seen
assert 130 <= v1 <= 185, seen  # 80% of 200 is 160; binomial spread well inside this
PY

step "${STEPS[8]}"
if refused="$(k -n "$ns" apply -f hack/kind/invalid-virtualservice.yaml 2>&1)"; then
    fail "the invalid VirtualService was accepted"
fi
echo "$refused"
grep -q "total destination weight" <<<"$refused" || fail "refused, but not by mizzen's validation"

step "${STEPS[9]}"
# So that what the policies refuse next is theirs, not a broken path.
answered outside "http://reviews.${ns}:9080/" 5 all || fail "the plaintext client is not answered"
answered "$ns" http://ratings:9080/ 5 all || fail "client -> ratings is not answered"

step "${STEPS[10]}"
k -n "$ns" apply -f hack/kind/policy.yaml
eventually 60 answered outside "http://reviews.${ns}:9080/" 5 none \
    || fail "STRICT mTLS let a plaintext client in"
answered outside "http://reviews.${ns}:9080/" 10 none || fail "STRICT mTLS let a plaintext client in"
answered "$ns" http://reviews:9080/ 10 all || fail "mTLS broke traffic inside the mesh"

step "${STEPS[11]}"
eventually 60 answered "$ns" http://ratings:9080/ 5 none || fail "the AuthorizationPolicy did not deny"
answered "$ns" http://productpage:9080/ 5 all || fail "the AuthorizationPolicy denied too much"

step "${STEPS[12]}"
metrics="$(k -n "$ns" exec deploy/client -c mizzen-proxy -- python3 -c \
    'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:15020/stats/prometheus").read().decode())')"
grep -q '^istio_requests_total{' <<<"$metrics" || fail "no istio_requests_total from the sidecar"
grep '^istio_requests_total{' <<<"$metrics" | head -3

step "${STEPS[13]}"
soak_out="$(mktemp)"
app "$ns" soak http://productpage:9080/ 90 >"$soak_out" &
soak_pid=$!
sleep 5
k -n "$mesh_ns" rollout restart deployment/mizzen
k -n "$mesh_ns" rollout status deployment/mizzen --timeout=180s
wait "$soak_pid" || fail "the traffic loop failed"
echo "during the restart: $(cat "$soak_out")"
"$py" -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["failed"] == 0 and s["ok"] > 100, s' "$soak_out" \
    || fail "requests failed during the control-plane restart"
rm -f "$soak_out"

step "${STEPS[14]}"
sleep 5  # the restarted replicas push once more after their first full state
statuses=""
for pod in $(k -n "$mesh_ns" get pods -l app=mizzen -o name); do
    k -n "$mesh_ns" port-forward "$pod" 25014:15014 >/dev/null 2>&1 &
    forward=$!
    sleep 2
    statuses+="$("${mizzen[@]}" proxy-status --control http://127.0.0.1:25014)"$'\n'
    kill "$forward" 2>/dev/null || true
    wait "$forward" 2>/dev/null || true
done
echo "$statuses"
# Every row (one per proxy, over all replicas) SYNCED in all four types; every workload there.
"$py" - "$statuses" productpage-v1 reviews-v1 reviews-v2 ratings-v1 tcp-echo client <<'PY' \
    || fail "a proxy is not in sync, or not connected"
import sys
rows = [line.split() for line in sys.argv[1].splitlines()]
rows = [r for r in rows if r and r[0] != "NAME" and r[:3] != ["no", "proxies", "connected"]]
bad = [r[0] for r in rows if r[1:5] != ["SYNCED"] * 4]
missing = [d for d in sys.argv[2:] if not any(r[0].startswith(d + "-") for r in rows)]
assert not bad and not missing, f"not SYNCED: {bad}; not connected: {missing}"
print(f"{len(rows)} proxies, all SYNCED")
PY

step "${STEPS[15]}"
if [ "$keep" = 1 ]; then
    echo "kept (--keep): kind delete cluster --name ${cluster}"
else
    kind delete cluster --name "$cluster" || fail "the cluster could not be deleted"
    deleted=1
fi
