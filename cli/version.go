package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metamesh/metamesh/protocols"
)

// Version is set at build time with
// -ldflags "-X github.com/metamesh/metamesh/cli.Version=…".
var Version = "dev"

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit, Go version and the codecs built in",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			commit := "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, s := range info.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "metamesh %s\ncommit %s\n%s\ncodecs %s\n", Version, commit, runtime.Version(),
				strings.Join(protocols.Names(), " "))
		},
	}
}
