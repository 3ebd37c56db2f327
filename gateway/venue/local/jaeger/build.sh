#!/usr/bin/env bash
# Builds Jaeger (v2: an OpenTelemetry Collector distribution with Jaeger's storage and
# query) from Go modules, pinned in go.mod, and caches it by version outside the
# repository:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/tradingvenue/jaeger/<version>/jaeger
#
# Instant when built; otherwise `go build` (a few minutes on 2 cores when cold). Progress
# goes to stderr; the last line on stdout is the binary's path. Safe to run concurrently.
#
#   gateway/venue/local/jaeger/build.sh            build if needed, print the path
#   gateway/venue/local/jaeger/build.sh --print    print the path, build nothing
set -euo pipefail

JAEGER_VERSION=v1.75.0 # keep in step with go.mod (newer tags are served but not approved)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/tradingvenue/jaeger/$JAEGER_VERSION
BIN=$CACHE/jaeger
STAMP="jaeger $JAEGER_VERSION $(cat "$HERE/go.mod" "$HERE/go.sum" | sha256sum | cut -c1-16)"

if [[ ${1:-} == --print ]]; then
  echo "$BIN"
  exit 0
fi
fresh() { [[ -x $BIN && -f $CACHE/.stamp && $(<"$CACHE/.stamp") == "$STAMP" ]]; }
if fresh; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9
if fresh; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || export PATH=/usr/local/go/bin:$PATH
export GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOWORK=off
started=$(date +%s)
echo "build.sh: go build jaeger $JAEGER_VERSION ($(go version))" >&2
(cd "$HERE" && go build -mod=readonly -trimpath -ldflags "-s -w" -o "$CACHE/jaeger.new" \
  github.com/jaegertracing/jaeger/cmd/jaeger)
mv -f "$CACHE/jaeger.new" "$BIN"
echo "$STAMP" >"$CACHE/.stamp"
echo "build.sh: built in $(($(date +%s) - started)) s" >&2
echo "$BIN"
