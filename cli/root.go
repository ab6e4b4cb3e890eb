// Package cli is the metamesh command line: every subcommand (run, proxy,
// controlplane, iptables, validate, version). cmd/metamesh is a main package that
// imports the built-in codecs and calls Main; a binary with codecs of its
// own does the same with its codec packages imported beside them (see
// docs/write-a-codec.md, "Build a binary with your codec").
package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Main runs the metamesh command with the process's arguments and exits
// with status 1 on error.
func Main() {
	if err := Root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "metamesh:", err)
		os.Exit(1)
	}
}

// Root returns the metamesh command and its subcommands.
func Root() *cobra.Command {
	root := &cobra.Command{
		Use:           "metamesh",
		Short:         "A service mesh for Dubbo, Thrift, Redis and other non-HTTP L7 traffic",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), proxyCmd(), controlplaneCmd(), iptablesCmd(), validateCmd(), versionCmd())
	return root
}
