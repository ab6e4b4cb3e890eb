package harness

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// reserve holds the stopped server's ports until it starts again: under
// ephemeral port pressure another process's listen or connect would
// otherwise take one, and the restarted server would fail to bind (or
// its clients would reach the other process). Each port gets a socket
// bound to it but not listening: connections to it are refused, as to
// a stopped server; the kernel hands it to no listen on port 0 and to
// no connect; and SO_REUSEADDR lets the server bind it while it is held
// (and this bind it while the server's closed connections are in
// TIME_WAIT). A port that cannot be held is left free.
func (s *RegistryServer) reserve() {
	for _, port := range s.ports {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) != nil ||
			syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}) != nil {
			_ = syscall.Close(fd)
			continue
		}
		s.held = append(s.held, fd)
	}
}

// release closes the sockets reserve holds.
func (s *RegistryServer) release() {
	for _, fd := range s.held {
		_ = syscall.Close(fd)
	}
	s.held = nil
}

func portOf(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil {
		t.Fatalf("harness: no port in %q", addr)
	}
	return port
}
