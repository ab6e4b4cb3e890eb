package cli

import (
	"os"
	"regexp"
	"testing"

	"github.com/spf13/cobra"
)

var argLine = regexp.MustCompile(`(?m)^\s+- (--[a-z-]+(=\S*)?)\s*$`)

// TestDeployArgs checks that the flags the manifests in deploy/ pass are
// ones the commands take.
func TestDeployArgs(t *testing.T) {
	for file, cmd := range map[string]*cobra.Command{
		"../deploy/controlplane.yaml":  controlplaneCmd(),
		"../deploy/proxy-example.yaml": proxyCmd(),
	} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, m := range argLine.FindAllStringSubmatch(string(data), -1) {
			args = append(args, m[1])
		}
		if len(args) == 0 {
			t.Fatalf("%s: no container args found", file)
		}
		if err := cmd.ParseFlags(args); err != nil {
			t.Errorf("%s: %v (args %v)", file, err, args)
		}
	}
}
