package netnstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Host is a network namespace on a Net.
type Host struct {
	net *Net
	// Name is the name it was created with; NS its namespace's name, for
	// `ip netns exec`.
	Name, NS string
	// Addr and Addr6 are its first addresses.
	Addr, Addr6 netip.Addr
}

// Do runs fn on an OS thread that is in h's namespace for the duration
// of the call. What fn creates there stays there: sockets it opens
// (listeners, connections) and processes it starts (os/exec forks from
// the calling thread) belong to h, and may be used from anywhere after.
// Goroutines fn starts run in the test's own namespace.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	// A goroutine of its own: if switching back failed, it exits with its
	// thread still locked, and the runtime ends that thread rather than
	// reuse it in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netnstest: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(netnsDir+"/"+h.NS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netnstest: %s: %w", h.NS, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netnstest: setns %s: %w", h.NS, err)
			return
		}
		err = fn()
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			errc <- errors.Join(err, fmt.Errorf("netnstest: back from %s: %w", h.NS, rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// Listen listens in h's namespace, failing t on error; the listener is
// closed when t ends.
func (h *Host) Listen(t testing.TB, network, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := h.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("netnstest: listen on %s in %s: %v", addr, h.Name, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// Dial connects from h's namespace.
func (h *Host) Dial(network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		c, err = net.Dial(network, addr)
		return err
	})
	return c, err
}

// Start starts cmd in h's namespace; if it still runs when t ends it is
// killed, and waited for either way unless the test did.
func (h *Host) Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := h.Do(cmd.Start); err != nil {
		t.Fatalf("netnstest: start %s in %s: %v", cmd, h.Name, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
}

// Run runs cmd in h's namespace and returns its combined output.
func (h *Host) Run(cmd *exec.Cmd) ([]byte, error) {
	var out []byte
	err := h.Do(func() (err error) {
		out, err = cmd.CombinedOutput()
		return err
	})
	return out, err
}

// AsUser makes cmd run as uid (and gid uid, no supplementary groups), as
// the sidecar proxy runs as its own UID.
func AsUser(cmd *exec.Cmd, uid uint32) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: uid}
	return cmd
}
