package iptables

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/proxy/capture"
	"github.com/metamesh/metamesh/proxy/capture/netnstest"
)

// These tests apply the rules in network namespaces made by netnstest and
// send connections only to listeners they opened there, at addresses
// netnstest assigned (198.18.0.0/24, 2001:2::/64) or at loopback.

var backends = []Backend{NFT, Legacy}

// applyIn runs Apply in h's namespace.
func applyIn(t *testing.T, h *netnstest.Host, c Config, b Backend) []Result {
	t.Helper()
	var res []Result
	err := h.Do(func() (err error) {
		res, err = Apply(context.Background(), c, Options{Backend: b})
		return err
	})
	if err != nil {
		t.Fatalf("apply in %s: %v", h.Name, err)
	}
	return res
}

// cleanIn runs Clean in h's namespace.
func cleanIn(t *testing.T, h *netnstest.Host, b Backend) {
	t.Helper()
	if err := h.Do(func() error { _, err := Clean(context.Background(), Options{Backend: b}); return err }); err != nil {
		t.Fatalf("clean in %s: %v", h.Name, err)
	}
}

// saveIn returns the nat table of f in h, as b's iptables-save prints it,
// without its comment lines (they hold the time).
// chainCounters matches the packet and byte counters of a chain line.
var chainCounters = regexp.MustCompile(`\[\d+:\d+\]`)

func saveIn(t *testing.T, h *netnstest.Host, f Family, b Backend) string {
	t.Helper()
	tl, err := toolsFor(f, b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Run(exec.Command(tl.save, "-t", "nat"))
	if err != nil {
		t.Fatalf("%s in %s: %v: %s", tl.save, h.Name, err, out)
	}
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "#") {
			// Chain counters move with whatever the namespace sends
			// (multicast reports when its interface comes up): not rules.
			keep = append(keep, chainCounters.ReplaceAllString(line, "[0:0]"))
		}
	}
	return strings.Join(keep, "\n")
}

// accepted is a connection a listener accepted, with the first line
// the dialer sent: every dialer of these tests sends one, which names it.
type accepted struct {
	conn *net.TCPConn
	line string
	err  error
}

// acceptor accepts every connection of a listener and reads its first
// line, for first.
type acceptor chan accepted

// accepting starts accepting on ln until the test ends.
func accepting(t *testing.T, ln net.Listener) acceptor {
	a := make(acceptor, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at the end of the test
			}
			t.Cleanup(func() { c.Close() })
			got := accepted{conn: c.(*net.TCPConn)}
			got.line, got.err = bufio.NewReader(c).ReadString('\n')
			a <- got
		}
	}()
	return a
}

// hangGuard bounds the wait for a connection that is sure to arrive
// somewhere; it only turns a broken test into a failure, not a hang.
const hangGuard = 30 * time.Second

// first returns 0 or 1, whichever of two acceptors gets a connection
// first, and the connection. Where a connection goes is what the rules
// decide, so the test waits for it to show up, never for its absence.
func first(t *testing.T, a, b acceptor) (int, accepted) {
	t.Helper()
	select {
	case got := <-a:
		return 0, got
	case got := <-b:
		return 1, got
	case <-time.After(hangGuard):
		t.Fatal("no connection arrived at either listener")
	}
	return -1, accepted{}
}

// dialAs dials addr from h as uid in a child process (bash's /dev/tcp)
// and sends token and a newline.
func dialAs(t *testing.T, h *netnstest.Host, uid uint32, addr netip.AddrPort, token string) {
	t.Helper()
	script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && echo %s >&3", addr.Addr(), addr.Port(), token)
	out, err := h.Run(netnstest.AsUser(exec.Command("bash", "-c", script), uid))
	if err != nil {
		t.Fatalf("dial %v as uid %d from %s: %v: %s", addr, uid, h.Name, err, out)
	}
}

func listenAny(t *testing.T, h *netnstest.Host, port int) net.Listener {
	return h.Listen(t, "tcp", fmt.Sprintf(":%d", port))
}

func TestOutboundCapture(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			n := netnstest.New(t)
			consumer, server := n.Host("consumer"), n.Host("server")
			excl4, excl6 := server.AddAddr()
			cfg := DefaultConfig()
			cfg.ExcludeOutboundPorts = []uint16{8081}
			cfg.ExcludeOutboundCIDRs = []netip.Prefix{netip.PrefixFrom(excl4, 32), netip.PrefixFrom(excl6, 128)}
			res := applyIn(t, consumer, cfg, b)
			if len(res) != 2 || res[0].Tool != "iptables-"+string(b)+"-restore" || res[1].Tool != "ip6tables-"+string(b)+"-restore" {
				t.Fatalf("results %+v: want IPv4 and IPv6 through the %s tools", res, b)
			}
			app, excluded := accepting(t, listenAny(t, server, 8080)), accepting(t, listenAny(t, server, 8081))

			for _, fam := range []struct {
				name          string
				loopback      string
				target, other netip.Addr
			}{
				{"IPv4", "127.0.0.1", server.Addr, excl4},
				{"IPv6", "::1", server.Addr6, excl6},
			} {
				t.Run(fam.name, func(t *testing.T) {
					proxy := accepting(t, consumer.Listen(t, "tcp", net.JoinHostPort(fam.loopback, "15001")))
					dst := netip.AddrPortFrom(fam.target, 8080)

					// The application (root here) is captured, and the proxy
					// recovers where it was going.
					c, err := consumer.Dial("tcp", dst.String())
					if err != nil {
						t.Fatalf("dial %v: %v", dst, err)
					}
					defer c.Close()
					if _, err := c.Write([]byte("root\n")); err != nil {
						t.Fatal(err)
					}
					ln, a := first(t, app, proxy)
					if ln != 1 || a.line != "root\n" {
						t.Fatalf("root's connection to %v reached the server: not captured", dst)
					}
					if a.conn.RemoteAddr().String() != c.LocalAddr().String() {
						t.Fatalf("the proxy accepted %v, the dialer is %v", a.conn.RemoteAddr(), c.LocalAddr())
					}
					orig, err := capture.OriginalDst(a.conn)
					if err != nil || orig != dst {
						t.Fatalf("original destination %v (%v), want %v", orig, err, dst)
					}

					// Any other user is captured too; the proxy's is not.
					dialAs(t, consumer, 1000, dst, "u1000")
					if ln, a := first(t, app, proxy); ln != 1 || a.line != "u1000\n" {
						t.Errorf("uid 1000: listener %d got %q, want the proxy", ln, a.line)
					}
					dialAs(t, consumer, DefaultProxyUID, dst, "proxy")
					if ln, a := first(t, app, proxy); ln != 0 || a.line != "proxy\n" {
						t.Errorf("uid %d (the proxy): listener %d got %q, want the server", DefaultProxyUID, ln, a.line)
					}

					// Excluded ports and networks go where they were dialed.
					dialAs(t, consumer, 1000, netip.AddrPortFrom(fam.target, 8081), "port")
					if ln, a := first(t, excluded, proxy); ln != 0 || a.line != "port\n" {
						t.Errorf("excluded port: listener %d got %q, want the server", ln, a.line)
					}
					dialAs(t, consumer, 1000, netip.AddrPortFrom(fam.other, 8080), "cidr")
					if ln, a := first(t, app, proxy); ln != 0 || a.line != "cidr\n" {
						t.Errorf("excluded CIDR: listener %d got %q, want the server", ln, a.line)
					}
				})
			}
		})
	}
}

func TestInboundCapture(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			n := netnstest.New(t)
			consumer, provider := n.Host("consumer"), n.Host("provider")
			cfg := DefaultConfig()
			cfg.CaptureInbound = true
			cfg.ExcludeInboundPorts = []uint16{9001}
			applyIn(t, provider, cfg, b)
			inbound := accepting(t, listenAny(t, provider, 15006))
			app, excluded := accepting(t, listenAny(t, provider, 9000)), accepting(t, listenAny(t, provider, 9001))
			for _, addr := range []netip.Addr{provider.Addr, provider.Addr6} {
				dst := netip.AddrPortFrom(addr, 9000)
				c, err := consumer.Dial("tcp", dst.String())
				if err != nil {
					t.Fatalf("dial %v: %v", dst, err)
				}
				defer c.Close()
				if _, err := c.Write([]byte("captured\n")); err != nil {
					t.Fatal(err)
				}
				ln, a := first(t, app, inbound)
				if ln != 1 || a.line != "captured\n" {
					t.Fatalf("connection to %v reached the application: not captured", dst)
				}
				if orig, err := capture.OriginalDst(a.conn); err != nil || orig != dst {
					t.Fatalf("original destination %v (%v), want %v", orig, err, dst)
				}
				dialAs(t, consumer, 0, netip.AddrPortFrom(addr, 9001), "excluded")
				if ln, a := first(t, excluded, inbound); ln != 0 || a.line != "excluded\n" {
					t.Errorf("%v: excluded inbound port: listener %d got %q, want the application", addr, ln, a.line)
				}
			}
		})
	}
}

func TestApplyIsIdempotentAndCleanRemovesOnlyOurs(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			h := netnstest.New(t).Host("pod")
			// Someone else's rules, which must survive.
			tl, _ := toolsFor(IPv4, b)
			foreign := "*nat\n:OTHER - [0:0]\n-A OTHER -p tcp --dport 9999 -j RETURN\n-A OUTPUT -p tcp -j OTHER\nCOMMIT\n"
			if out, err := h.Run(stdin(exec.Command(tl.restore, "--noflush"), foreign)); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			before := map[Family]string{IPv4: saveIn(t, h, IPv4, b), IPv6: saveIn(t, h, IPv6, b)}

			cfg := DefaultConfig()
			cfg.CaptureInbound = true
			cfg.ExcludeOutboundPorts = []uint16{22}
			first := applyIn(t, h, cfg, b)
			once := saveIn(t, h, IPv4, b)
			second := applyIn(t, h, cfg, b)
			if twice := saveIn(t, h, IPv4, b); twice != once {
				t.Errorf("applying twice changed the rules:\nonce:\n%s\ntwice:\n%s", once, twice)
			}
			// 2 jumps, 2 REDIRECTs, 4 outbound decisions (uid, lo, port 22,
			// redirect), 3 inbound (2 capture ports, redirect).
			for i := range first {
				if first[i].Rules != 11 || second[i].Rules != 11 {
					t.Errorf("%v: %d rules, then %d; want 11", first[i].Family, first[i].Rules, second[i].Rules)
				}
			}
			if !strings.Contains(once, "-A OUTPUT -p tcp -j OTHER") {
				t.Errorf("someone else's jump is gone:\n%s", once)
			}

			// Without inbound capture the inbound chains go.
			cfg.CaptureInbound = false
			applyIn(t, h, cfg, b)
			if s := saveIn(t, h, IPv4, b); strings.Contains(s, ChainInbound) || strings.Contains(s, ChainInRedirect) || !strings.Contains(s, ChainOutput) {
				t.Errorf("after applying without inbound capture:\n%s", s)
			}

			cleanIn(t, h, b)
			cleanIn(t, h, b) // nothing left to remove: not an error
			for f, want := range before {
				if got := saveIn(t, h, f, b); got != want {
					t.Errorf("%v after clean:\n%s\nwant what was there before:\n%s", f, got, want)
				}
				if got := saveIn(t, h, f, b); strings.Contains(got, "METAMESH") {
					t.Errorf("%v: a METAMESH rule is left:\n%s", f, got)
				}
			}
		})
	}
}

func TestAutoBackendFollowsTheNamespace(t *testing.T) {
	n := netnstest.New(t)
	fresh, legacy := n.Host("fresh"), n.Host("legacy")
	if out, err := legacy.Run(exec.Command("iptables-legacy", "-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "ACCEPT")); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res := applyIn(t, legacy, DefaultConfig(), Auto); res[0].Tool != "iptables-legacy-restore" {
		t.Errorf("a namespace with legacy rules: applied with %s", res[0].Tool)
	}
	if s := saveIn(t, legacy, IPv4, NFT); strings.Contains(s, "METAMESH") {
		t.Errorf("rules went to nft too:\n%s", s)
	}
	if res := applyIn(t, fresh, DefaultConfig(), Auto); res[0].Tool != "iptables-restore" {
		t.Errorf("an empty namespace: applied with %s, want the system's default iptables-restore", res[0].Tool)
	}
}

func stdin(cmd *exec.Cmd, s string) *exec.Cmd {
	cmd.Stdin = strings.NewReader(s)
	return cmd
}
