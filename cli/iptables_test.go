package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestIptablesDryRun compares `metamesh iptables --dry-run` with golden
// files (go test ./cli -run IptablesDryRun -update rewrites them).
func TestIptablesDryRun(t *testing.T) {
	for name, args := range map[string][]string{
		"iptables-default": nil,
		"iptables-all-flags": {"--proxy-uid=2000", "--outbound-port=16001", "--inbound-port=16006", "--capture-inbound",
			"--exclude-outbound-ports=22,3306", "--exclude-outbound-cidrs=10.96.0.0/12,169.254.169.254,fd00::/8",
			"--exclude-inbound-ports=15020,15090"},
	} {
		t.Run(name, func(t *testing.T) {
			root := Root()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetArgs(append([]string{"iptables", "--dry-run"}, args...))
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if out.String() != string(want) {
				t.Errorf("output differs from %s (go test -update, then review the diff):\n%s", golden, out.String())
			}
		})
	}
}

func TestIptablesRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--exclude-outbound-ports=0"},
		{"--exclude-outbound-ports=http"},
		{"--exclude-outbound-cidrs=10.0.0.0/33"},
		{"--capture-inbound", "--inbound-port=15001"},
		{"--backend=iptables"},
		{"--clean"},
	} {
		root := Root()
		root.SetOut(&bytes.Buffer{})
		root.SetArgs(append([]string{"iptables", "--dry-run"}, args...))
		if err := root.Execute(); err == nil {
			t.Errorf("%s: accepted", strings.Join(args, " "))
		}
	}
}
