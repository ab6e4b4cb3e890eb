package cli

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/proxy/capture/netnstest"
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

// TestIptablesAppliesAndCleans runs the command itself in a network
// namespace (as an init container would): apply, apply again, clean.
func TestIptablesAppliesAndCleans(t *testing.T) {
	h := netnstest.New(t).Host("pod")
	run := func(args ...string) string {
		t.Helper()
		root := Root()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append([]string{"iptables", "--backend=nft"}, args...))
		if err := h.Do(root.Execute); err != nil {
			t.Fatalf("iptables %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	// 1 jump, 1 REDIRECT, uid, lo, port 22, redirect.
	want := "IPv4: 6 metamesh rules (iptables-nft-restore)\nIPv6: 6 metamesh rules (ip6tables-nft-restore)\n"
	for range 2 {
		if out := run("--exclude-outbound-ports=22"); out != want {
			t.Errorf("apply: %q, want %q", out, want)
		}
	}
	if out := run("--clean"); out != "IPv4: 0 metamesh rules (iptables-nft-restore)\nIPv6: 0 metamesh rules (ip6tables-nft-restore)\n" {
		t.Errorf("clean: %q", out)
	}
	out, err := h.Run(exec.Command("iptables-nft-save"))
	if err != nil || strings.Contains(string(out), "METAMESH") {
		t.Errorf("after --clean (%v):\n%s", err, out)
	}
}
