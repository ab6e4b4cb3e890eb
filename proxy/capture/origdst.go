// Package capture is the proxy's side of transparent capture: connections
// that iptables REDIRECT rules (`metamesh iptables`) sent to the proxy.
package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST, and IP6T_SO_ORIGINAL_DST too: the
// same number at levels SOL_IP and SOL_IPV6.
const soOriginalDst = unix.SO_ORIGINAL_DST

// OriginalDst returns the address conn was dialed to before a NAT
// REDIRECT (or DNAT) rule sent it here, from the connection's conntrack
// entry. For a connection no rule rewrote it is conn's local address.
func OriginalDst(conn *net.TCPConn) (netip.AddrPort, error) {
	local, ok := conn.LocalAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("capture: original destination: local address %v is not TCP", conn.LocalAddr())
	}
	v4 := local.AddrPort().Addr().Unmap().Is4()
	raw, err := conn.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("capture: original destination: %w", err)
	}
	var dst netip.AddrPort
	var serr error
	err = raw.Control(func(fd uintptr) {
		if v4 {
			dst, serr = originalDst4(int(fd))
		} else {
			dst, serr = originalDst6(int(fd))
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("capture: original destination of %v: %w", conn.RemoteAddr(), err)
	}
	return dst, nil
}

// originalDst4 reads a struct sockaddr_in. x/sys has no getsockopt for a
// sockaddr; an IPv6Mreq (20 bytes) is large enough to receive the 16-byte
// sockaddr_in, which is all the kernel writes.
func originalDst4(fd int) (netip.AddrPort, error) {
	m, err := unix.GetsockoptIPv6Mreq(fd, unix.SOL_IP, soOriginalDst)
	if err != nil {
		return netip.AddrPort{}, err
	}
	b := m.Multiaddr[:] // family (2, host order), port (2, network order), address (4)
	port := binary.BigEndian.Uint16(b[2:4])
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port), nil
}

// originalDst6 reads a struct sockaddr_in6, received in the IPv6MTUInfo
// x/sys has a getsockopt for (a sockaddr_in6 and a uint32).
func originalDst6(fd int) (netip.AddrPort, error) {
	m, err := unix.GetsockoptIPv6MTUInfo(fd, unix.SOL_IPV6, soOriginalDst)
	if err != nil {
		return netip.AddrPort{}, err
	}
	// Port holds the network-order bytes as the kernel wrote them.
	var port [2]byte
	binary.NativeEndian.PutUint16(port[:], m.Addr.Port)
	return netip.AddrPortFrom(netip.AddrFrom16(m.Addr.Addr), binary.BigEndian.Uint16(port[:])), nil
}
