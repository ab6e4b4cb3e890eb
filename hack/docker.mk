# docker.mk: image-binary builds the binary the Dockerfile puts in the image,
# with the same script (hack/image-build.sh), so `make` checks what the
# image ships without a Docker engine. Checked: static, Linux.
.PHONY: image-binary
image-binary:
	GO=$(GO) hack/image-build.sh $(BIN)/image/metamesh
	@file $(BIN)/image/metamesh 2>/dev/null | grep -q 'statically linked' \
		|| $(GO) version -m $(BIN)/image/metamesh | grep -q 'CGO_ENABLED=0' \
		|| { echo "image-binary: $(BIN)/image/metamesh is not static"; exit 1; }
