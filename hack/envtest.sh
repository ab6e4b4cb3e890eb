#!/usr/bin/env bash
# envtest.sh prepares the binaries controller-runtime's envtest starts
# (kube-apiserver and etcd) in one cache folder outside the repository and
# prints that folder, for KUBEBUILDER_ASSETS.
#
# kube-apiserver can't be downloaded here, so it is built from the Go module
# k8s.io/kubernetes through the wrapper module in hack/envtest (about 12 min
# cold on 2 cores, 170 MB); a binary already in the cache that reports the
# pinned version is reused. etcd comes from Debian's etcd-server package.
# Build output goes to stderr; stdout is only the folder.
set -euo pipefail

version=v1.37.2
minor=${version#v1.}
minor=${minor%%.*}
here=$(cd "$(dirname "$0")" && pwd)
dir=${METAMESH_CACHE:-$HOME/.cache/metamesh}/envtest/$version
mkdir -p "$dir"

if ! "$dir/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $version"; then
	echo "envtest: building kube-apiserver $version into $dir (slow the first time)" >&2
	pkg=k8s.io/component-base/version
	(cd "$here/envtest" && CGO_ENABLED=0 ${GO:-go} build -trimpath \
		-ldflags "-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor" \
		-o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver) >&2
	mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
fi

if ! command -v etcd >/dev/null; then
	echo "envtest: installing Debian's etcd-server" >&2
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server; } >&2
fi
if ! "$dir/etcd" --version >/dev/null 2>&1; then
	ln -sf "$(command -v etcd)" "$dir/etcd"
fi

echo "$dir"
