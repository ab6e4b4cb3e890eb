# The metamesh image: one static binary on distroless, running as nonroot.
# The binary is built by hack/image-build.sh, which `make image-binary` also
# runs, so make checks the very binary this image copies.
#   docker build -t ghcr.io/metamesh/metamesh:latest .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETARCH
RUN GOARCH=${TARGETARCH} hack/image-build.sh /out/metamesh

# The sidecar init container's image (--target init): the same binary
# beside Debian's iptables (both back ends), which `metamesh iptables` runs.
#   docker build --target init -t ghcr.io/metamesh/metamesh-init:latest .
FROM debian:12-slim AS init
RUN apt-get update && apt-get install -y --no-install-recommends iptables && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/metamesh /metamesh
ENTRYPOINT ["/metamesh"]

# The default target, last: the control plane and the proxy.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/metamesh /metamesh
USER 65532:65532
ENTRYPOINT ["/metamesh"]
