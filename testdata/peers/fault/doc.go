// Package fault is metamesh's fault suite: real clients (dubbo-go,
// apache/thrift, go-redis) and real servers through the proxy while an
// upstream misbehaves, the control plane is killed, or the config churns.
// Each scenario asserts with counts and states, never with timing
// thresholds. The tests are in the _test files; `make soak` runs them for
// longer under -race (see testdata/peers/README.md).
package fault
