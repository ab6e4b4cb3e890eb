// Command metamesh-lprpc is metamesh with the lprpc codec built in beside
// the built-in ones: the whole of a plugin build. `make plugin-example`
// builds it into bin/.
package main

import (
	"github.com/metamesh/metamesh/cli"
	_ "github.com/metamesh/metamesh/examples/lprpc"
	_ "github.com/metamesh/metamesh/protocols/builtin"
)

func main() { cli.Main() }
