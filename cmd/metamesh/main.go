// Command metamesh is the one metamesh binary: the proxy, and (in later
// releases) the control plane and the embedded default, as subcommands.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	// The built-in codecs register themselves.
	_ "github.com/metamesh/metamesh/protocols/dubbo"
	_ "github.com/metamesh/metamesh/protocols/redis"
	_ "github.com/metamesh/metamesh/protocols/thrift"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "metamesh:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "metamesh",
		Short:         "A service mesh for Dubbo, Thrift, Redis and other non-HTTP L7 traffic",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), proxyCmd(), controlplaneCmd(), validateCmd(), versionCmd())
	return root
}
