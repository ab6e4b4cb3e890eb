package mtls

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// recordHandshake is the first byte of a TLS connection: a handshake
// record carrying the ClientHello. No meta-protocol frame starts with it
// (Dubbo 0xda, Thrift 0x80/0x82 or a frame length under 16 MiB, Redis a
// RESP type or an inline command's letter).
const recordHandshake = 0x16

// IsTLS waits, until deadline, for the client's first byte and reports
// whether it opens a TLS handshake. The byte is peeked (MSG_PEEK), not
// read: whoever serves the connection next reads it, TLS or plaintext.
func IsTLS(tc *net.TCPConn, deadline time.Time) (bool, error) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return false, err
	}
	if err := tc.SetReadDeadline(deadline); err != nil {
		return false, err
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
		return false, err
	case perr != nil:
		return false, perr
	case n == 0:
		return false, io.EOF
	}
	return b[0] == recordHandshake, nil
}
