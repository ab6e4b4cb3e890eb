// Package dubboplugins registers the dubbo-go v3.3.0 extensions (SPI
// implementations) that a direct, registry-less provider or consumer on the
// dubbo protocol needs.
//
// dubbo-go's own one-stop package dubbo.apache.org/dubbo-go/v3/imports also
// links every registry, config-center and tracing client (ZooKeeper, Nacos,
// Polaris, etcd, xDS, Jaeger, …); importing only what is used here keeps this
// module's dependency graph and build time down.
//
// Every filter named in dubbo-go's default filter chains must be registered:
// protocolwrapper.BuildInvokerChain wraps a missing filter as a nil filter
// and the first call through it panics.
package dubboplugins

import (
	// clusters and load balancing used by a direct URL reference
	_ "dubbo.apache.org/dubbo-go/v3/cluster/cluster/failfast"
	_ "dubbo.apache.org/dubbo-go/v3/cluster/cluster/failover"
	_ "dubbo.apache.org/dubbo-go/v3/cluster/loadbalance/random"

	// constant.DefaultServiceFilters and constant.DefaultReferenceFilters
	_ "dubbo.apache.org/dubbo-go/v3/filter/accesslog"
	_ "dubbo.apache.org/dubbo-go/v3/filter/echo"
	_ "dubbo.apache.org/dubbo-go/v3/filter/exec_limit"
	_ "dubbo.apache.org/dubbo-go/v3/filter/generic"
	_ "dubbo.apache.org/dubbo-go/v3/filter/graceful_shutdown"
	_ "dubbo.apache.org/dubbo-go/v3/filter/token"
	_ "dubbo.apache.org/dubbo-go/v3/filter/tps"

	// the dubbo protocol (getty transport, hessian2) and the reflection proxy
	_ "dubbo.apache.org/dubbo-go/v3/protocol/dubbo"
	_ "dubbo.apache.org/dubbo-go/v3/proxy/proxy_factory"

	// the "registry" protocol: Server.Serve looks it up to register the
	// service instance and logs an ERROR when it is missing (no registry is
	// configured, so it registers nothing)
	_ "dubbo.apache.org/dubbo-go/v3/registry/protocol"
)
