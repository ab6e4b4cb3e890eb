// Command ratelimit-server is Envoy's own rate-limit service
// (github.com/envoyproxy/ratelimit), built here so that the global
// rate-limit interop tests talk to the real thing. It is configured the
// upstream way, through environment variables (GRPC_PORT, REDIS_URL,
// RUNTIME_ROOT, ...).
package main

import (
	"github.com/envoyproxy/ratelimit/src/service_cmd/runner"
	"github.com/envoyproxy/ratelimit/src/settings"
)

func main() {
	r := runner.NewRunner(settings.NewSettings())
	r.Run()
}
