// Command metamesh is the one metamesh binary: the embedded default (run),
// the proxy, the control plane, and config validation, with the built-in
// codecs (dubbo, thrift, redis).
package main

import (
	"github.com/metamesh/metamesh/cli"
	_ "github.com/metamesh/metamesh/protocols/builtin"
)

func main() { cli.Main() }
