//go:build linux

package wire

import (
	"syscall"
	"testing"
)

// TestSysReadWrite: sysRead and sysWrite answer as syscall.Read and
// syscall.Write do on a non-blocking socket: EAGAIN when it has nothing
// (or no room), the bytes otherwise, EBADF on a closed descriptor.
func TestSysReadWrite(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[1])
	buf := make([]byte, 16)
	if n, err := sysRead(fds[0], buf); n != -1 || err != syscall.EAGAIN {
		t.Errorf("read of an empty socket: %d, %v; want -1, EAGAIN", n, err)
	}
	if n, err := sysWrite(fds[1], []byte("hello")); n != 5 || err != nil {
		t.Errorf("write: %d, %v; want 5, nil", n, err)
	}
	if n, err := sysRead(fds[0], buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Errorf("read: %d, %v, %q; want 5, nil, hello", n, err, buf[:max(n, 0)])
	}
	// Fill the socket: the write that finds no room says EAGAIN.
	big := make([]byte, 1<<16)
	for range 1 << 10 {
		n, err := sysWrite(fds[1], big)
		if err == syscall.EAGAIN {
			if n != -1 {
				t.Errorf("write to a full socket returned %d with EAGAIN, want -1", n)
			}
			break
		}
		if err != nil || n <= 0 {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	if n, err := sysWrite(fds[1], nil); n != 0 || err != nil {
		t.Errorf("empty write: %d, %v; want 0, nil", n, err)
	}
	syscall.Close(fds[0])
	if _, err := sysRead(fds[0], buf); err != syscall.EBADF {
		t.Errorf("read of a closed descriptor: %v, want EBADF", err)
	}
}
