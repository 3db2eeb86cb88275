#!/usr/bin/env bash
# Build, once, the upstream binaries the local cluster and the tests run, from pinned Go modules:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl etcd  (tools/kubernetes)
#   kwok (tools/kwok)   helm (tools/helm)   kubeconform (tools/kubeconform)
#   dockerfile-lint (tools/dockerfile-lint: BuildKit's `docker build --check` rules, no engine needed)
# Binaries go to $MOE_CACHE_DIR/bin/<kubernetes version>/ (default ~/.cache/moe-operator). Each tool has its
# own stamp (a hash of its go.mod/go.sum/sources and link flags): changing or adding one tool rebuilds only it.
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

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

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

# tool -> "ldflags|binaries|packages"
declare -A recipe=(
  [kubernetes]="$k8s_ld|kube-apiserver kube-controller-manager kube-scheduler kubectl etcd|k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3"
  [kwok]="$kwok_ld|kwok|sigs.k8s.io/kwok/cmd/kwok"
  [helm]="$helm_ld|helm|helm.sh/helm/v3/cmd/helm"
  [kubeconform]="-s -w|kubeconform|github.com/yannh/kubeconform/cmd/kubeconform"
  [dockerfile-lint]="-s -w|dockerfile-lint|."
)
field() { echo "${recipe[$1]}" | cut -d'|' -f"$2"; }
stamp_of() { { cat "$tools/$1"/go.mod "$tools/$1"/go.sum "$tools/$1"/*.go; echo "${recipe[$1]}"; } | sha256sum | cut -c1-16; }
fresh() {
  local b
  for b in $(field "$1" 2); do [ -x "$bin/$b" ] || return 1; done
  [ "$(cat "$bin/.stamp-$1" 2>/dev/null)" = "$(stamp_of "$1")" ]
}
stale=()
for t in kubernetes kwok helm kubeconform dockerfile-lint; do fresh "$t" || stale+=("$t"); done
if [ ${#stale[@]} = 0 ]; then
  log "reusing cached binaries in $bin"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { log "go is not installed: it is needed once to build the cluster binaries"; exit 1; }
mkdir -p "$bin" "$cache/logs"
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
start=$(date +%s)
log "building ${stale[*]} (Kubernetes $k8s_version, kwok $kwok_version, helm $helm_version) into $bin"
[[ " ${stale[*]} " == *" kubernetes "* ]] && log "Kubernetes takes 12-30 minutes on 2 cores the first time; later runs reuse the cache"

# One build job per module; `go build -v` names each package as it compiles it, which is our progress.
build() { # tool
  local t=$1 logf="$cache/logs/build-$1.log"
  # shellcheck disable=SC2046 # the package list is meant to split
  ( cd "$tools/$t" && go build -v -ldflags "$(field "$t" 1)" -o "$bin/" $(field "$t" 3) ) >"$logf" 2>&1 || return 1
  if [ "$t" = kubernetes ] && [ -x "$bin/server" ]; then mv -f "$bin/server" "$bin/etcd"; fi # etcd's main package is .../server/v3
  stamp_of "$t" >"$bin/.stamp-$t"
}

declare -A pids=()
small=()
for t in "${stale[@]}"; do
  if [ "$t" = kubernetes ]; then
    # The Kubernetes build is the big one: run it alongside the small ones (memory allows, 2 cores are shared).
    build kubernetes & pids[kubernetes]=$!
  else small+=("$t"); fi
done
if [ ${#small[@]} -gt 0 ]; then
  ( for t in "${small[@]}"; do build "$t" || exit 1; done ) & pids[tools]=$!
fi

while :; do
  running=0
  for name in "${!pids[@]}"; do kill -0 "${pids[$name]}" 2>/dev/null && running=1; done
  [ $running = 1 ] || break
  progress=""
  for t in "${stale[@]}"; do
    f="$cache/logs/build-$t.log"
    [ -f "$f" ] && progress+=" $t:$(grep -cv '^go: ' "$f" || true)pkgs"
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
    log "FAILED: $name; last lines of the build logs:"
    for t in "${stale[@]}"; do tail -n 30 "$cache/logs/build-$t.log" >&2 2>/dev/null || true; done
  fi
done
[ $failed = 0 ] || exit 1
for t in kubernetes kwok helm kubeconform dockerfile-lint; do
  fresh "$t" || { log "missing or stale $t after build"; exit 1; }
done
rm -f "$bin/.stamp"  # the single stamp of earlier versions of this script
log "built in $(( $(date +%s) - start ))s: $(du -sh "$bin" | cut -f1) in $bin"
echo "$bin"
