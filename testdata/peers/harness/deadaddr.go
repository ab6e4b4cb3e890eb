package harness

import (
	"fmt"
	"syscall"
	"testing"
)

// DeadAddr returns a 127.0.0.1 address that refuses connections for the
// whole test: its port is bound by a socket that never listens, so no
// other test or process can take it (as a port FreeAddr found free can be
// taken), and a dial to it is refused, not answered.
func DeadAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("harness: DeadAddr: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("harness: DeadAddr: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("harness: DeadAddr: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
