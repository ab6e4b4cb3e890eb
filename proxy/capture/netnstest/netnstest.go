// Package netnstest gives tests Linux network namespaces to play hosts
// (pods) in: each Net is a bridge in a namespace of its own, and each Host
// a namespace with a veth pair to that bridge and addresses from the
// benchmarking ranges, 198.18.0.0/15 (RFC 2544) and 2001:2::/48 (RFC
// 5180), that no real network routes. A host's only routes are to its
// Net, so nothing a test sends can reach any address the test did not
// create. Everything is removed when the test ends, failed or not; a test
// binary killed before that leaves namespaces named after its PID, which
// the next New removes.
//
// Creating namespaces needs root; without it New skips the test.
package netnstest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// prefix starts the name of every namespace this package creates; the
// creating process's PID follows it.
const prefix = "mmt-"

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/var/run/netns"

var nets atomic.Int64

// Net is a set of hosts on one layer-2 segment: 198.18.0.0/24 and
// 2001:2::/64. Every Net is isolated from every other, so their
// addresses may repeat.
type Net struct {
	t      testing.TB
	name   string // prefix + pid + "-" + n
	sw     string // the switch namespace, holding bridge br0
	hosts  int
	nextIP int
}

// New creates an empty Net removed when t ends, or skips t when the
// process is not root.
func New(t testing.TB) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netnstest: network namespaces need root (CI runs the tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("netnstest: ip not found (install iproute2; make mesh-tools does): %v", err)
	}
	sweep(t)
	n := &Net{t: t, name: fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), nets.Add(1)), nextIP: 1}
	n.sw = n.name + "-sw"
	n.addNS(n.sw)
	ip(t, "-n", n.sw, "link", "add", "br0", "type", "bridge")
	ip(t, "-n", n.sw, "link", "set", "br0", "up")
	return n
}

// addNS creates a namespace and removes it when the test ends.
func (n *Net) addNS(name string) {
	n.t.Helper()
	ip(n.t, "netns", "add", name)
	n.t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			n.t.Errorf("netnstest: ip netns del %s: %v: %s", name, err, out)
		}
	})
	ip(n.t, "-n", name, "link", "set", "lo", "up")
}

// Host creates a host on n, with its first addresses assigned.
// name names it in the namespace's name and in test messages.
func (n *Net) Host(name string) *Host {
	n.t.Helper()
	n.hosts++
	h := &Host{net: n, Name: name, NS: n.name + "-" + name}
	n.addNS(h.NS)
	port := fmt.Sprintf("h%d", n.hosts)
	ip(n.t, "-n", n.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
	ip(n.t, "-n", n.sw, "link", "set", port, "master", "br0", "up")
	ip(n.t, "-n", h.NS, "link", "set", "eth0", "up")
	h.Addr, h.Addr6 = h.AddAddr()
	return h
}

// AddAddr assigns h one more IPv4 and one more IPv6 address of its Net
// and returns them.
func (h *Host) AddAddr() (v4, v6 netip.Addr) {
	n := h.net
	n.t.Helper()
	i := n.nextIP
	n.nextIP++
	if i > 254 {
		n.t.Fatal("netnstest: out of addresses")
	}
	v4 = netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})
	v6 = netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 3: 0x02, 15: byte(i)})
	ip(n.t, "-n", h.NS, "addr", "add", v4.String()+"/24", "dev", "eth0")
	// nodad: usable at once, not after duplicate address detection.
	ip(n.t, "-n", h.NS, "addr", "add", v6.String()+"/64", "dev", "eth0", "nodad")
	return v4, v6
}

// ip runs the ip command, failing t on error.
func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("netnstest: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// sweep removes the namespaces of test processes that no longer run.
func sweep(t testing.TB) {
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(pidStr); err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", pidStr)); err == nil {
			continue // its test is still running
		}
		if out, err := exec.Command("ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
			t.Logf("netnstest: removing stale namespace %s: %v: %s", e.Name(), err, out)
		}
	}
}
