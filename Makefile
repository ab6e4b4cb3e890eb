# metamesh: `make run` starts the demo, `make test` runs every check CI runs.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
PEERS := testdata/peers
EXAMPLES := examples/lprpc
RLS := testdata/ratelimit-server
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
CONTROLLER_GEN := sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
export CGO_ENABLED ?= 0

.PHONY: all build run peers test deps static unit interop interop-goroutine examples plugin-example redis-tools mesh-tools etcd-tools zookeeper-tools ratelimit-server lint generate check-generated bench fuzz soak tools clean

all: build

build:
	$(GO) build -trimpath -o $(BIN)/metamesh ./cmd/metamesh
	$(GO) build -trimpath -o $(BIN)/metamesh-bench ./cmd/metamesh-bench

# peers builds the real dubbo-go and apache/thrift programs from their own module.
peers:
	cd $(PEERS) && $(GO) build -o $(BIN)/greeter-server ./cmd/greeter-server && $(GO) build -o $(BIN)/demo-client ./cmd/demo-client \
		&& $(GO) build -o $(BIN)/thrift-server ./cmd/thrift-server

run: build peers redis-tools
	BIN=$(BIN) testdata/demo/run.sh

# tools installs what the checks need: protoc and the thrift compiler from
# Debian (pinned by the distribution release), protoc-gen-go at the version
# go.mod pins.
tools:
	@command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null; }
	@command -v thrift >/dev/null || { apt-get update -qq && apt-get install -y -qq thrift-compiler >/dev/null; }
	@GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go

# generate: protobuf for crds/xdsapi, the Thrift peers' Go code, then deepcopy
# and CRD YAML for crds/.
# Aeraki's kinds need float64 (mirrorPercentage.value), so only their CRD run
# gets allowDangerousTypes; metamesh's own kinds must not use floats.
generate: tools
	protoc -I crds/xdsapi -I /usr/include --plugin=protoc-gen-go=$(BIN)/protoc-gen-go \
		--go_out=crds/xdsapi --go_opt=paths=source_relative crds/xdsapi/metaprotocol.proto
	cd $(PEERS)/thrift && rm -rf gen-go && thrift --gen go:package_prefix=github.com/metamesh/metamesh/$(PEERS)/thrift/gen-go/,skip_remote echo.thrift && gofmt -w gen-go
	rm -f crds/bases/*.yaml
	$(GO) run $(CONTROLLER_GEN) object paths=./crds/...
	$(GO) run $(CONTROLLER_GEN) crd paths=./crds/v1alpha1/... output:crd:artifacts:config=crds/bases
	$(GO) run $(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./crds/aeraki/... output:crd:artifacts:config=crds/bases
	$(MAKE) -s deploy-crds

check-generated: generate
	@git diff --exit-code -- crds/xdsapi crds deploy/crds $(PEERS)/thrift/gen-go || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@out=$$(git status --porcelain --untracked-files=all -- crds/xdsapi crds deploy/crds $(PEERS)/thrift/gen-go); [ -z "$$out" ] || { echo "generated files not committed:"; echo "$$out"; exit 1; }

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd $(PEERS) && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd $(EXAMPLES) && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd $(RLS) && $(GO) vet ./...
	$(GO) mod tidy -diff
	cd $(PEERS) && $(GO) mod tidy -diff
	cd $(EXAMPLES) && $(GO) mod tidy -diff
	cd $(RLS) && $(GO) mod tidy -diff

unit: envtest mesh-tools
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# redis-tools installs Debian's redis-server and redis-cli when missing
# (the Redis interop tests start their own servers on free ports).
redis-tools:
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server redis-tools >/dev/null; }

# mesh-tools installs Debian's iproute2 and iptables when missing: the
# mesh-mode tests (proxy/capture/...) make network namespaces with ip and apply
# rules with both iptables back ends (they run as root, else skip).
mesh-tools:
	@command -v ip >/dev/null && command -v iptables-nft-restore >/dev/null && command -v iptables-legacy-restore >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iptables >/dev/null; }

# zookeeper-tools installs Debian's ZooKeeper (with a JRE) and etcd when
# missing (the registry interop tests start their own servers on free ports).
zookeeper-tools:
	@test -f /usr/share/java/zookeeper.jar && command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq zookeeper >/dev/null; }
	@command -v etcd >/dev/null || { apt-get update -qq && apt-get install -y -qq etcd-server >/dev/null; }

# interop runs the real peers (dubbo-go, apache/thrift, redis-server,
# ZooKeeper, etcd) against the proxy, and `metamesh controlplane` against
# envtest's kube-apiserver (the registry status test).
interop: redis-tools zookeeper-tools envtest
	export KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) && cd $(PEERS) && CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory interop-goroutine

# interop-goroutine runs the Redis interop tests again with the proxy in the
# goroutine I/O mode (the suite runs in the default, epoll on Linux;
# docs/proxy-config.md, "I/O mode"): about a minute.
interop-goroutine: redis-tools
	cd $(PEERS) && METAMESH_IO_MODE=goroutine CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m -run 'TestRedis' ./interop/

# soak runs the fault suite (testdata/peers/fault) under -race for SOAK
# minutes: the config churn for the whole time and the upstream faults
# repeated until then (not part of make test).
SOAK ?= 10
soak: redis-tools
	cd $(PEERS) && CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $$(( $(SOAK) + 15 ))m ./fault/ \
		-fault.duration $(SOAK)m -fault.soak $(SOAK)m

# examples tests the codec written from the outside (its own module).
examples:
	cd $(EXAMPLES) && CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# plugin-example builds metamesh with the example codec built in.
plugin-example:
	cd $(EXAMPLES) && $(GO) build -trimpath -o $(BIN)/metamesh-lprpc ./cmd/metamesh-lprpc

# test runs every check CI runs, in three phases so both cores stay busy:
# the Debian packages first (apt takes one install at a time), then the
# static checks (which rewrite the generated files, so nothing else reads
# them meanwhile) beside the envtest and rate-limit server builds, then every
# test suite at once, each one's output kept together.
test:
	$(MAKE) --no-print-directory deps
	$(MAKE) --no-print-directory -j3 --output-sync=target static envtest ratelimit-server
	$(MAKE) --no-print-directory -j3 --output-sync=target unit examples interop image-binary

# ratelimit-server builds Envoy's rate-limit service (its own module, see
# testdata/ratelimit-server) into the build cache, so the global rate-limit
# interop tests that build it again find it warm.
ratelimit-server:
	cd $(RLS) && $(GO) build -o /dev/null .

# deps installs every Debian package the checks and tests use, when missing.
deps: tools redis-tools mesh-tools etcd-tools zookeeper-tools

# etcd-tools installs Debian's etcd-server when missing (envtest's etcd).
etcd-tools:
	@command -v etcd >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; }

static: lint
	$(MAKE) --no-print-directory check-generated

bench: build peers
	$(GO) test -run '^$$' -bench . -benchmem ./protocols/... ./proxy/...
	$(GO) test -run '^$$' -bench BenchmarkIssueWorkload -benchmem ./controlplane/ca/
	$(BIN)/metamesh-bench -metamesh $(BIN)/metamesh -dubbo-server $(BIN)/greeter-server -thrift-server $(BIN)/thrift-server -access-log-percent 1 -mirror-percent 10 -mtls -io-ab -rounds 3
	$(BIN)/metamesh-bench -metamesh $(BIN)/metamesh -dubbo-server $(BIN)/greeter-server -thrift-server $(BIN)/thrift-server -conns 8 -mirror-percent 10 -global-rate-limit -io-ab -rounds 3
	$(BIN)/metamesh-bench -metamesh $(BIN)/metamesh -idle-conns 5000 -io-ab
	ROUNDS=3 IO_AB=1 METAMESH=$(BIN)/metamesh testdata/bench/redis.sh
	METAMESH=$(BIN)/metamesh testdata/bench/redis-cluster.sh
	cd $(PEERS) && $(GO) build -o $(BIN)/grpc-echo ./cmd/grpc-echo
	METAMESH=$(BIN)/metamesh GRPC_ECHO=$(BIN)/grpc-echo testdata/bench/triple.sh
	$(GO) test -run '^$$' -bench BenchmarkMesh -benchtime 30x ./cli/ # mesh mode: root and network namespaces, else skipped saying why

# fuzz runs each codec's decoder fuzz target for FUZZTIME.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./protocols/dubbo/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./protocols/thrift/
	$(GO) test -run '^$$' -fuzz 'FuzzDecode$$' -fuzztime $(FUZZTIME) ./protocols/redis/
	$(GO) test -run '^$$' -fuzz 'FuzzDecodeResponse$$' -fuzztime $(FUZZTIME) ./protocols/redis/
	$(GO) test -run '^$$' -fuzz 'FuzzClusterReplies$$' -fuzztime $(FUZZTIME) ./protocols/redis/
	$(GO) test -run '^$$' -fuzz 'FuzzDecode$$' -fuzztime $(FUZZTIME) ./protocols/triple/
	$(GO) test -run '^$$' -fuzz 'FuzzConnDecode$$' -fuzztime $(FUZZTIME) ./protocols/triple/
	cd $(EXAMPLES) && $(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) .

clean:
	rm -rf $(BIN)

# hack/*.mk holds fragments for optional parts (envtest assets, image binary).
include $(wildcard hack/*.mk)
