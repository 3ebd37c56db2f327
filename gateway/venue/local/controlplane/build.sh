#!/usr/bin/env bash
# Builds the test control plane and the test node's Kubernetes parts from Go modules and
# caches them by version, outside the repository:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/tradingvenue/k8s/<k8s-version>/bin/
#       etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm
#       kubelet kube-proxy coredns kube-router
#
# Instant when every binary for the pinned versions is already there; otherwise builds
# the missing ones (printing timings). Progress goes to stderr; the last line on stdout
# is the bin directory. Safe to run concurrently (one builder at a time, flock).
#
#   gateway/venue/local/controlplane/build.sh            build if needed, print the bin dir
#   gateway/venue/local/controlplane/build.sh --print    print the bin dir, build nothing
#   gateway/venue/local/controlplane/build.sh --check    exit 0 when nothing needs building, 1 if not
#   gateway/venue/local/controlplane/build.sh --force    rebuild everything
set -euo pipefail

# --- pins -------------------------------------------------------------------------
# k8s.io/kubernetes and its staging modules (v0.X.Y) are pinned in go.mod, etcd too (the
# version k8s.io/kubernetes requires). Keep K8S_VERSION in step with go.mod.
K8S_VERSION=v1.34.10
K8S_BUILD_DATE=2026-07-22T22:05:06Z # the tag's time, as the module proxy records it
# The module proxy does not record the commit of this tag; Kubernetes' own placeholder.
K8S_GIT_COMMIT=0000000000000000000000000000000000000000
KWOK_VERSION=v0.7.0
HELM_VERSION=v3.19.5
COREDNS_VERSION=v1.12.1 # the CoreDNS kubeadm installs with Kubernetes 1.34
# The test node's NetworkPolicy agent (its firewall only). The one version the module
# proxy serves here; advisories name it, and it runs on the test node's own network
# namespace only.
KUBE_ROUTER_VERSION=v2.1.0

minor=${K8S_VERSION#v1.}
minor=${minor%%.*}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/tradingvenue/k8s/$K8S_VERSION
BIN=$CACHE/bin

if [[ ${1:-} == --print ]]; then
  echo "$BIN"
  exit 0
fi
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

export GOFLAGS=-buildvcs=false
export CGO_ENABLED=0
export GOWORK=off # this module stands alone, whatever go.work a parent dir may get

log() { echo "build.sh: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# Each binary's stamp records what it was built from; a changed pin or go.mod/go.sum
# rebuilds it.
mod_sum=$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/cmd/etcd/main.go" | sha256sum | cut -c1-16)
stamp_of() {
  case $1 in
    kwok) echo "kwok $KWOK_VERSION" ;;
    coredns) echo "coredns $COREDNS_VERSION" ;;
    kube-router) echo "kube-router $KUBE_ROUTER_VERSION" ;;
    helm) echo "helm $HELM_VERSION k8s ${K8S_VERSION}" ;;
    *) echo "$1 $K8S_VERSION $mod_sum" ;;
  esac
}
fresh() { [[ $FORCE == 0 && -x $BIN/$1 && -f $BIN/.$1.stamp && $(<"$BIN/.$1.stamp") == "$(stamp_of "$1")" ]]; }

K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
ALL_BINS=(etcd "${K8S_BINS[@]}" kwok helm coredns kube-router)

all_fresh() {
  local b
  for b in "${ALL_BINS[@]}"; do fresh "$b" || return 1; done
}

if [[ ${1:-} == --check ]]; then
  all_fresh
  exit
fi
if all_fresh; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN"
exec 9>"$CACHE/.build.lock"
log "waiting for the build lock $CACHE/.build.lock"
flock 9
FORCE_AT_START=$FORCE
if [[ $FORCE == 0 ]] && all_fresh; then # another process built it while we waited
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || export PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || { log "go is not installed"; exit 1; }
log "$(go version); cache $BIN"

TMP=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
start_all=$(now)

install_bin() { # name: move the freshly built binary into place, then stamp it
  mv -f "$TMP/$1" "$BIN/$1"
  stamp_of "$1" >"$BIN/.$1.stamp"
}

# --- Kubernetes and etcd, from the wrapper module ----------------------------------
need=()
for b in etcd "${K8S_BINS[@]}"; do fresh "$b" || need+=("$b"); done
if ((${#need[@]})); then
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=$K8S_GIT_COMMIT -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=$K8S_BUILD_DATE"
  done
  pkgs=()
  for b in "${need[@]}"; do
    if [[ $b == etcd ]]; then pkgs+=(./cmd/etcd); else pkgs+=("k8s.io/kubernetes/cmd/$b"); fi
  done
  t=$(now)
  log "go mod download"
  (cd "$HERE" && go mod download)
  log "modules ready in $(since "$t")"
  t=$(now)
  log "go build ${need[*]} (Kubernetes $K8S_VERSION; 10-20 minutes on 2 cores when cold)"
  (cd "$HERE" && go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$TMP/" "${pkgs[@]}")
  log "built ${need[*]} in $(since "$t")"
  for b in "${need[@]}"; do install_bin "$b"; done
fi

# --- kwok and helm: go install, pinned -------------------------------------------------
if ! fresh kwok; then
  t=$(now)
  log "go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  (cd "$TMP" && GOBIN=$TMP go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
  log "built kwok in $(since "$t")"
  install_bin kwok
fi
if ! fresh helm; then
  t=$(now)
  log "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  hv=helm.sh/helm/v3/internal/version
  hl="-s -w -X $hv.version=$HELM_VERSION -X $hv.gitTreeState=clean"
  hl+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  hl+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  (cd "$TMP" && GOBIN=$TMP go install -trimpath -ldflags "$hl" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  log "built helm in $(since "$t")"
  install_bin helm
fi

if ! fresh coredns; then
  t=$(now)
  log "go install github.com/coredns/coredns@$COREDNS_VERSION"
  (cd "$TMP" && GOBIN=$TMP go install -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@$COREDNS_VERSION")
  log "built coredns in $(since "$t")"
  install_bin coredns
fi

if ! fresh kube-router; then
  t=$(now)
  log "go install github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
  kv=github.com/cloudnativelabs/kube-router/v2/pkg/version
  (cd "$TMP" && GOBIN=$TMP go install -trimpath \
    -ldflags "-s -w -X $kv.Version=$KUBE_ROUTER_VERSION" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION")
  log "built kube-router in $(since "$t")"
  install_bin kube-router
fi

log "done in $(since "$start_all") (force=$FORCE_AT_START)"
echo "$BIN"
