package wire

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// Peek waits, until deadline, for the first byte a client sends on tc and
// returns it. The byte is peeked (MSG_PEEK), not read: whoever serves the
// connection next reads it. The proxy tells protocols apart by it: TLS
// from plaintext (mutual TLS between proxies, PERMISSIVE) and Triple from
// Dubbo2 on a dubbo listener (docs/proxy-config.md, "Dubbo2 and Triple
// on one port").
func Peek(tc *net.TCPConn, deadline time.Time) (byte, error) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, err
	}
	if err := tc.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	defer func() { _ = tc.SetReadDeadline(time.Time{}) }()
	var (
		b    [1]byte
		n    int
		perr error
	)
	err = raw.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return !errors.Is(perr, syscall.EAGAIN) && !errors.Is(perr, syscall.EINTR)
	})
	switch {
	case err != nil:
		return 0, err
	case perr != nil:
		return 0, perr
	case n == 0:
		return 0, io.EOF
	}
	return b[0], nil
}
