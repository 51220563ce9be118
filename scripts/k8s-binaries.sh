#!/usr/bin/env bash
# Builds a real kube-apiserver, kube-controller-manager and etcd from the Go
# module proxy, once, into ~/.cache/sitrep/k8s/<versions>/ (or $SITREP_K8S_BIN),
# and prints that directory. Later runs — CI's fresh clones too — find the
# binaries there and return at once.
#
# Kubernetes: a wrapper module requiring k8s.io/kubernetes, with a replace to
# the matching published version of every staging module it requires at
# v0.0.0. etcd: a wrapper main around go.etcd.io/etcd/server/v3/etcdmain.
# kwok (sigs.k8s.io/kwok): simulated nodes that make pods Running and Ready
# without a kubelet, for the release tests.
set -euo pipefail
K8S=${K8S_VERSION:-v1.34.4}
STAGING=${K8S_STAGING_VERSION:-v0.${K8S#v1.}}
ETCD=${ETCD_VERSION:-v3.6.16}
KWOK=${KWOK_VERSION:-v0.8.0}
out=${SITREP_K8S_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/sitrep/k8s/$K8S-etcd-$ETCD}
mkdir -p "$out"
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0
if [ ! -x "$out/kwok-$KWOK" ]; then
  echo "k8s-binaries: building kwok $KWOK (minutes, once)" >&2
  GOBIN="$out/.kwok" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK"
  mv "$out/.kwok/kwok" "$out/kwok-$KWOK" && rmdir "$out/.kwok"
fi
ln -sfn "kwok-$KWOK" "$out/kwok"
if [ ! -s "$out/kwok-$KWOK-stages.yaml" ]; then # kwok runs nothing without stages: its own "fast" ones, as shipped
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  for f in "$src"/kustomize/stage/node/fast/*.yaml "$src"/kustomize/stage/node/heartbeat-with-lease/*.yaml "$src"/kustomize/stage/pod/fast/*.yaml; do
    case "$f" in */kustomization.yaml) continue ;; esac
    echo "---"; cat "$f"
  done > "$out/.stages" && mv "$out/.stages" "$out/kwok-$KWOK-stages.yaml"
fi
ln -sfn "kwok-$KWOK-stages.yaml" "$out/kwok-stages.yaml"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/etcd" ]; then
  echo "$out"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/k8s" && cd "$work/k8s"
go mod init sitrep.local/k8sbuild >/dev/null 2>&1
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
[ -f "$gomod" ] || { echo "k8s-binaries: no go.mod for k8s.io/kubernetes@$K8S" >&2; exit 1; }
{
  echo "require k8s.io/kubernetes $K8S"
  grep -E '^[[:space:]]+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="$STAGING" '{print "replace " $1 " => " $1 " " v}'
} >> go.mod
for cmd in kube-apiserver kube-controller-manager; do
  echo "k8s-binaries: building $cmd $K8S (minutes, once)" >&2
  go build -trimpath -ldflags "-s -w" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done

mkdir "$work/etcd" && cd "$work/etcd"
go mod init sitrep.local/etcdbuild >/dev/null 2>&1
cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
echo "require go.etcd.io/etcd/server/v3 $ETCD" >> go.mod
echo "k8s-binaries: building etcd $ETCD" >&2
go build -trimpath -ldflags "-s -w" -o "$out/etcd" .
echo "$out"
