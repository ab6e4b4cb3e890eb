package wire_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// repeatReader returns block n times, one whole block per Read, then EOF.
type repeatReader struct {
	block []byte
	n     int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	r.n--
	return copy(p, r.block), nil
}

// BenchmarkReadFrames decodes 64 frames of 64 bytes per Read; one op is
// one Read.
func BenchmarkReadFrames(b *testing.B) {
	var block []byte
	for i := range 64 {
		block = frame(block, payload(i, 60))
	}
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	frames := 0
	b.ResetTimer()
	err := wire.ReadFrames(&repeatReader{block: block, n: b.N}, lenCodec{}, func(*protocols.Message) error {
		frames++
		return nil
	}, nil)
	if !errors.Is(err, io.EOF) || frames != 64*b.N {
		b.Fatalf("ReadFrames: %v after %d frames", err, frames)
	}
}

// discardConn is a connection whose writes always succeed at once.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkWriterAppend appends one 128-byte frame per op.
func BenchmarkWriterAppend(b *testing.B) {
	w := wire.NewWriter(discardConn{}, 0)
	defer w.Close()
	body := payload(0, 124)
	b.SetBytes(128)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Append(func(dst []byte) []byte { return frame(dst, body) }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriterAppendParallel(b *testing.B) {
	w := wire.NewWriter(discardConn{}, 0)
	defer w.Close()
	body := payload(0, 124)
	b.SetBytes(128)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.Append(func(dst []byte) []byte { return frame(dst, body) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkWriterAppendTCP appends one 128-byte frame per op to a loopback
// TCP connection drained by a reader, the path where a producer writes
// to the socket itself.
func BenchmarkWriterAppendTCP(b *testing.B) {
	local, remote := tcpPair(b)
	go func() { _, _ = io.Copy(io.Discard, remote) }()
	w := wire.NewWriter(local, 0)
	defer w.Close()
	body := payload(0, 124)
	b.SetBytes(128)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Append(func(dst []byte) []byte { return frame(dst, body) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReaderTCP is one request and its reply over loopback TCP at
// pipeline depth 1 (one op), the Reader reading the requests and a
// Writer echoing them: the read loop's cost per frame, which should
// allocate nothing.
func BenchmarkReaderTCP(b *testing.B) {
	local, remote := tcpPair(b)
	w := wire.NewWriter(local, 0)
	done := make(chan error, 1)
	go func() {
		done <- wire.ReadFrames(local, lenCodec{}, func(m *protocols.Message) error {
			return w.Queue(func(dst []byte) []byte { return append(dst, m.Raw...) })
		}, w.Flush)
	}()
	req := frame(nil, payload(0, 60))
	resp := make([]byte, len(req))
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := remote.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(remote, resp); err != nil {
			b.Fatal(err)
		}
	}
	_ = remote.Close()
	if err := <-done; !errors.Is(err, io.EOF) {
		b.Fatalf("read loop: %v", err)
	}
	w.Close()
}
