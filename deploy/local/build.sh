#!/usr/bin/env bash
# Build, once, the upstream binaries the local cluster runs, from pinned Go modules:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl etcd  (tools/kubernetes)
#   kwok (tools/kwok)   helm (tools/helm)   kubeconform (tools/kubeconform)
# Binaries go to $MOE_CACHE_DIR/bin/<kubernetes version>/ (default ~/.cache/moe-operator) and are
# reused as long as the pinned go.mod/go.sum files are unchanged (a stamp file records their hash).
# Prints the bin directory on stdout as its last line; progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/tools"
k8s_version="$(awk '$1=="k8s.io/kubernetes"{print $2}' "$tools/kubernetes/go.mod")"
k8s_minor="$(echo "$k8s_version" | cut -d. -f2)"
kwok_version="$(awk '$1=="require"&&$2=="sigs.k8s.io/kwok"{print $3}' "$tools/kwok/go.mod")"
helm_version="$(awk '$1=="require"&&$2=="helm.sh/helm/v3"{print $3}' "$tools/helm/go.mod")"
cache="${MOE_CACHE_DIR:-$HOME/.cache/moe-operator}"
bin="$cache/bin/$k8s_version"
stamp_value="$(cat "$tools"/*/go.mod "$tools"/*/go.sum "$here/build.sh" | sha256sum | cut -c1-16)"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm kubeconform)

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

all_present() {
  local b
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
  [ "$(cat "$bin/.stamp" 2>/dev/null)" = "$stamp_value" ]
}

if all_present; then
  log "reusing cached binaries in $bin"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { log "go is not installed: it is needed once to build the cluster binaries"; exit 1; }
mkdir -p "$bin" "$cache/logs"
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
start=$(date +%s)
log "cold build of Kubernetes $k8s_version, etcd, kwok $kwok_version, helm $helm_version, kubeconform into $bin"
log "this takes 15-30 minutes on 2 cores the first time; later runs reuse the cache in seconds"

# One build job per module; `go build -v` names each package as it compiles it, which is our progress.
build() { # name module_dir ldflags packages...
  local name=$1 dir=$2 ldflags=$3; shift 3
  local logf="$cache/logs/build-$name.log"
  ( cd "$tools/$dir" && go build -v -ldflags "$ldflags" -o "$bin/" "$@" ) >"$logf" 2>&1
}

k8s_ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ld+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
helm_ld="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
kwok_ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$kwok_version -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$k8s_version"

declare -A pids=()
# The Kubernetes build is the big one: run it alongside the small ones (memory allows, 2 cores are shared).
build kubernetes kubernetes "$k8s_ld" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3 &
pids[kubernetes]=$!
( build kwok kwok "$kwok_ld" sigs.k8s.io/kwok/cmd/kwok &&
  build helm helm "$helm_ld" helm.sh/helm/v3/cmd/helm &&
  build kubeconform kubeconform "-s -w" github.com/yannh/kubeconform/cmd/kubeconform ) &
pids[tools]=$!

while :; do
  running=0
  for name in "${!pids[@]}"; do kill -0 "${pids[$name]}" 2>/dev/null && running=1; done
  [ $running = 1 ] || break
  progress=""
  for f in "$cache"/logs/build-*.log; do
    [ -f "$f" ] && progress+=" $(basename "$f" .log | sed 's/build-//'):$(grep -cv '^go: ' "$f" || true)pkgs"
  done
  log "$(( $(date +%s) - start ))s elapsed;$progress"
  for _ in $(seq 30); do
    running=0
    for name in "${!pids[@]}"; do kill -0 "${pids[$name]}" 2>/dev/null && running=1; done
    [ $running = 1 ] || break
    sleep 1
  done
done

failed=0
for name in "${!pids[@]}"; do
  if ! wait "${pids[$name]}"; then
    failed=1
    log "FAILED: $name; last lines of its log:"
    tail -n 30 "$cache"/logs/build-*.log >&2
  fi
done
[ $failed = 0 ] || exit 1
# etcd's main package is go.etcd.io/etcd/server/v3; go build names its binary after "server".
if [ -x "$bin/server" ]; then mv -f "$bin/server" "$bin/etcd"; fi
for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || { log "missing $b after build"; exit 1; }; done
echo "$stamp_value" >"$bin/.stamp"
log "built in $(( $(date +%s) - start ))s: $(du -sh "$bin" | cut -f1) in $bin"
echo "$bin"
