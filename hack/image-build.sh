#!/usr/bin/env bash
# image-build.sh OUT builds the metamesh binary the container image ships:
# static (no cgo), without local paths or VCS stamping, stripped, for Linux.
# The Dockerfile runs this script, and so does `make image-binary`, so the
# binary make checks is the one the image copies.
set -euo pipefail
out=${1:?usage: image-build.sh OUT}
cd "$(dirname "$0")/.."
CGO_ENABLED=0 GOOS=linux GOARCH=${GOARCH:-$(${GO:-go} env GOARCH)} \
	${GO:-go} build -trimpath -buildvcs=false -ldflags="-s -w" -o "$out" ./cmd/metamesh
