package capture

import (
	"errors"
	"io"
	"net"
	"sync"
)

// relayChunk bounds how many bytes are copied between two counts, so the
// byte counters of a long connection move while it lasts. io.CopyN
// between TCP connections still splices.
const relayChunk = 1 << 20

// Relay copies bytes both ways between client and upstream until both
// directions have ended, then closes both. When one side half-closes (its
// reader sees EOF), the other side's write half is closed, so a client
// that shuts down its writing still reads the whole reply. up and down are
// called with the bytes copied client → upstream and upstream → client.
func Relay(client, upstream net.Conn, up, down func(n int64)) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(upstream, client, up) }()
	go func() { defer wg.Done(); pipe(client, upstream, down) }()
	wg.Wait()
	_ = client.Close()
	_ = upstream.Close()
}

// pipe copies src to dst, then closes dst's write half (or dst, if it has
// none) and src's read half.
func pipe(dst, src net.Conn, count func(int64)) {
	for {
		n, err := io.CopyN(dst, src, relayChunk)
		if n > 0 {
			count(n)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// A reset or a failed write: the other direction can't
				// go on meaningfully either.
				_ = dst.Close()
				_ = src.Close()
				return
			}
			break
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
	if cr, ok := src.(interface{ CloseRead() error }); ok {
		_ = cr.CloseRead()
	}
}
