package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// CaptureTable finds the listener that serves a captured connection by
// the address and port its client dialed (mesh mode). It is built with
// the snapshot and read without locks.
type CaptureTable struct {
	exact  map[netip.AddrPort]*Listener // single addresses (most: endpoints)
	byPort map[uint16][]captureEntry    // ranges per port, longest prefix first
}

type captureEntry struct {
	prefix   netip.Prefix
	listener *Listener
}

// Lookup returns the listener serving connections to dst, or nil: dst is
// not a destination of any listener and its connection is passed through.
// The longest matching prefix wins.
func (t *CaptureTable) Lookup(dst netip.AddrPort) *Listener {
	if t == nil {
		return nil
	}
	addr := dst.Addr().Unmap()
	if l, ok := t.exact[netip.AddrPortFrom(addr, dst.Port())]; ok {
		return l
	}
	for _, e := range t.byPort[dst.Port()] {
		if e.prefix.Contains(addr) {
			return e.listener
		}
	}
	return nil
}

// Len returns the number of (prefix, port) entries.
func (t *CaptureTable) Len() int {
	if t == nil {
		return 0
	}
	n := len(t.exact)
	for _, es := range t.byPort {
		n += len(es)
	}
	return n
}

// captureDestinations parses a listener's capture destinations. A
// destination naming another service than the listener's default gets a
// copy of the listener with that default, made here so that serving a
// captured connection allocates nothing more than a bound listener does.
func captureDestinations(l *Listener, dests []*xdsapi.CaptureDestination, path string) ([]captureEntryPort, error) {
	out := make([]captureEntryPort, 0, len(dests))
	variants := map[string]*Listener{}
	for i, d := range dests {
		at := fmt.Sprintf("%s.capture_destinations[%d]", path, i)
		p, err := parsePrefix(d.GetPrefix())
		if err != nil {
			return nil, fmt.Errorf("%s.prefix: %w", at, err)
		}
		if d.GetPort() == 0 || d.GetPort() > 65535 {
			return nil, fmt.Errorf("%s.port: %d is not a port number", at, d.GetPort())
		}
		served := l
		if svc := d.GetService(); svc != "" && svc != l.DefaultService {
			if served = variants[svc]; served == nil {
				v := *l
				v.DefaultService = svc
				served, variants[svc] = &v, &v
			}
		}
		out = append(out, captureEntryPort{captureEntry{prefix: p, listener: served}, uint16(d.GetPort())})
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%s: an IPv4-mapped range; write it as IPv4", s)
	}
	return p.Masked(), nil
}

// buildCaptureTable indexes the listeners' destinations by port. Two
// listeners claiming the same prefix and port: the one whose name sorts
// first serves it, whatever the order of the resources.
func buildCaptureTable(entries map[string][]captureEntryPort) *CaptureTable {
	t := &CaptureTable{exact: map[netip.AddrPort]*Listener{}, byPort: map[uint16][]captureEntry{}}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, e := range entries[n] {
			if e.prefix.IsSingleIP() {
				k := netip.AddrPortFrom(e.prefix.Addr(), e.port)
				if _, dup := t.exact[k]; !dup {
					t.exact[k] = e.listener
				}
				continue
			}
			dup := slices.ContainsFunc(t.byPort[e.port], func(o captureEntry) bool { return o.prefix == e.prefix })
			if !dup {
				t.byPort[e.port] = append(t.byPort[e.port], e.captureEntry)
			}
		}
	}
	for port, es := range t.byPort {
		// Longest prefix first; the sort is stable, so equal lengths keep
		// the name order.
		slices.SortStableFunc(es, func(a, b captureEntry) int { return cmp.Compare(b.prefix.Bits(), a.prefix.Bits()) })
		t.byPort[port] = es
	}
	return t
}

type captureEntryPort struct {
	captureEntry
	port uint16
}
