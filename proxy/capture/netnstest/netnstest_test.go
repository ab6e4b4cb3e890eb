package netnstest

import (
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestHostsTalkOverTheirNet(t *testing.T) {
	n := New(t)
	a, b := n.Host("a"), n.Host("b")
	for _, addr := range []string{net.JoinHostPort(b.Addr.String(), "7000"), net.JoinHostPort(b.Addr6.String(), "7000")} {
		ln := b.Listen(t, "tcp", addr)
		got := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- err.Error()
				return
			}
			defer c.Close()
			got <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String()
		}()
		c, err := a.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s from a: %v", addr, err)
		}
		c.Close()
		want := a.Addr.String()
		if strings.HasPrefix(addr, "[") {
			want = a.Addr6.String()
		}
		if from := <-got; from != want {
			t.Errorf("%s: connection from %s, want %s", addr, from, want)
		}
	}
}

func TestHostsRouteOnlyToTheirNet(t *testing.T) {
	n := New(t)
	h := n.Host("a")
	// h has no route but its Net's: nothing it sends can leave. (Nothing
	// is dialed from the test's own namespace: its default route leads
	// out of the machine.)
	out, err := h.Run(exec.Command("ip", "-4", "route", "show"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, "198.18.0.0/24 dev eth0") || strings.Contains(got, "\n") {
		t.Errorf("routes of %s:\n%s", h.Name, got)
	}
}

func TestCommandsRunInTheHost(t *testing.T) {
	n := New(t)
	h := n.Host("a")
	out, err := h.Run(exec.Command("ip", "-4", "-o", "addr", "show", "dev", "eth0"))
	if err != nil || !strings.Contains(string(out), h.Addr.String()+"/24") {
		t.Fatalf("ip addr in %s: %v\n%s", h.Name, err, out)
	}
	cmd := AsUser(exec.Command("id", "-u"), 1337)
	cmd.Stderr = os.Stderr
	r, _ := cmd.StdoutPipe()
	h.Start(t, cmd)
	b, _ := io.ReadAll(r)
	if err := cmd.Wait(); err != nil || strings.TrimSpace(string(b)) != "1337" {
		t.Fatalf("id -u as 1337: %v: %q", err, b)
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	var names []string
	t.Run("net", func(t *testing.T) {
		n := New(t)
		h := n.Host("a")
		names = append(names, n.sw, h.NS)
		h.Listen(t, "tcp", net.JoinHostPort(h.Addr.String(), "7000"))
		h.Start(t, exec.Command("sleep", "60"))
	})
	if len(names) == 0 {
		t.Skip("the subtest skipped")
	}
	for _, name := range names {
		if _, err := os.Stat(netnsDir + "/" + name); !os.IsNotExist(err) {
			t.Errorf("namespace %s left behind: %v", name, err)
		}
	}
}
