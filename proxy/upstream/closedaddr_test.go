package upstream_test

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// closedAddr is a 127.0.0.1 address nothing listens on, kept so for the
// test: its port is held by a socket bound but not listening, so dials
// are refused and no other process's listen on port 0 (another test
// binary's server) takes it, which would have had this test's dials
// reach that server and count in its tests. SO_REUSEADDR lets the test
// itself listen on it (newServerOn) while it is held.
func closedAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
