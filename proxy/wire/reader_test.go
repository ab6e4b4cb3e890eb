package wire_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// collect runs ReadFrames over r and returns copies of the frames' payloads.
func collect(r io.Reader, c protocols.Codec) ([][]byte, error) {
	var got [][]byte
	err := wire.ReadFrames(r, c, func(m *protocols.Message) error {
		got = append(got, bytes.Clone(m.Raw[4:]))
		return nil
	}, nil)
	return got, err
}

// chunkReader returns the stream in reads of the given sizes, cycling.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(r.sizes[r.i%len(r.sizes)], len(p), len(r.data))
	r.i++
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func TestReadFrames(t *testing.T) {
	sizes := []int{0, 1, 3, 100, 16<<10 - 4, 16 << 10, 40 << 10, 5, 300 << 10, 7}
	var stream []byte
	for i, n := range sizes {
		stream = frame(stream, payload(i, n))
	}
	readers := []struct {
		name string
		r    func() io.Reader
	}{
		{"whole stream per read", func() io.Reader { return bytes.NewReader(stream) }},
		{"one byte per read", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }},
		{"data with EOF", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) }},
		{"odd chunks", func() io.Reader { return &chunkReader{data: stream, sizes: []int{3, 4097, 1, 70000, 2}} }},
		{"net.Pipe", func() io.Reader {
			a, b := net.Pipe()
			go func() {
				// Writes that cut frames anywhere.
				for rest := stream; len(rest) > 0; {
					n := min(len(rest), 1000+len(rest)%777)
					if _, err := b.Write(rest[:n]); err != nil {
						return
					}
					rest = rest[n:]
				}
				_ = b.Close()
			}()
			t.Cleanup(func() { _ = a.Close() })
			return a
		}},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			got, err := collect(rd.r(), lenCodec{})
			if !errors.Is(err, io.EOF) {
				t.Errorf("ReadFrames returned %v, want io.EOF", err)
			}
			if len(got) != len(sizes) {
				t.Fatalf("got %d frames, want %d", len(got), len(sizes))
			}
			for i, n := range sizes {
				if !bytes.Equal(got[i], payload(i, n)) {
					t.Errorf("frame %d (%d bytes): payload differs (got %d bytes)", i, n, len(got[i]))
				}
			}
		})
	}
}

func TestReadFramesManyPerRead(t *testing.T) {
	var stream []byte
	for i := range 64 {
		stream = frame(stream, payload(i, 32))
	}
	r := &countingReader{r: bytes.NewReader(stream)}
	got, err := collect(r, lenCodec{})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("ReadFrames returned %v", err)
	}
	if len(got) != 64 {
		t.Fatalf("got %d frames, want 64", len(got))
	}
	for i, p := range got {
		if !bytes.Equal(p, payload(i, 32)) {
			t.Errorf("frame %d differs", i)
		}
	}
	// One read with data, one for EOF: frames were decoded from one read.
	if r.n != 2 {
		t.Errorf("%d reads for 64 frames in one buffer, want 2", r.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.n++
	return c.r.Read(p)
}

// TestReadFramesLargeAfterPartial reads a frame larger than the initial
// buffer that starts late in it, so the loop must both compact and grow.
func TestReadFramesLargeAfterPartial(t *testing.T) {
	var stream []byte
	stream = frame(stream, payload(0, 16<<10-100))
	stream = frame(stream, payload(1, 1<<20))
	stream = frame(stream, payload(2, 10))
	got, err := collect(&chunkReader{data: stream, sizes: []int{16<<10 - 50, 8 << 10}}, lenCodec{})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("ReadFrames returned %v", err)
	}
	if len(got) != 3 || len(got[1]) != 1<<20 || !bytes.Equal(got[1], payload(1, 1<<20)) || !bytes.Equal(got[2], payload(2, 10)) {
		t.Fatalf("got %d frames, want the 3 written intact", len(got))
	}
}

func TestReadFramesErrors(t *testing.T) {
	good := frame(frame(nil, []byte("one")), []byte("two"))
	errHandle := errors.New("handler says stop")
	errRead := errors.New("connection reset")
	tests := []struct {
		name       string
		r          io.Reader
		codec      protocols.Codec
		handle     func(n int) error
		wantFrames int
		check      func(t *testing.T, err error)
	}{
		{
			name:       "decode error after good frames",
			r:          bytes.NewReader(frame(good, payload(0, 2000))),
			codec:      lenCodec{maxFrame: 1000},
			wantFrames: 2,
			check: func(t *testing.T, err error) {
				var de *wire.DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("error %v (%T) is not a *wire.DecodeError", err, err)
				}
				if !errors.Is(err, errTooLong) {
					t.Errorf("DecodeError %v does not wrap the codec's error", err)
				}
				if !strings.HasPrefix(err.Error(), "decode: ") {
					t.Errorf("error text %q", err)
				}
			},
		},
		{
			name:       "decode error one byte at a time",
			r:          iotest.OneByteReader(bytes.NewReader(frame(good, payload(0, 2000)))),
			codec:      lenCodec{maxFrame: 1000},
			wantFrames: 2,
			check: func(t *testing.T, err error) {
				var de *wire.DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("error %v is not a *wire.DecodeError", err)
				}
			},
		},
		{
			name:       "codec claims more bytes than it was given",
			r:          bytes.NewReader(good),
			codec:      greedyCodec{},
			wantFrames: 0,
			check: func(t *testing.T, err error) {
				var de *wire.DecodeError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), "consumed") {
					t.Fatalf("error %v, want a DecodeError about consumed bytes", err)
				}
			},
		},
		{
			name:  "handler error stops the loop",
			r:     bytes.NewReader(frame(good, []byte("three"))),
			codec: lenCodec{},
			handle: func(n int) error {
				if n == 2 {
					return errHandle
				}
				return nil
			},
			wantFrames: 2,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errHandle) {
					t.Fatalf("error %v, want the handler's", err)
				}
			},
		},
		{
			name:       "read error after frames in the same read",
			r:          iotest.DataErrReader(io.MultiReader(bytes.NewReader(good), iotest.ErrReader(errRead))),
			codec:      lenCodec{},
			wantFrames: 2,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errRead) {
					t.Fatalf("error %v, want the reader's", err)
				}
			},
		},
		{
			name:       "EOF inside a frame",
			r:          bytes.NewReader(good[:len(good)-1]),
			codec:      lenCodec{},
			wantFrames: 1,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("error %v, want io.EOF", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := wire.ReadFrames(tt.r, tt.codec, func(*protocols.Message) error {
				n++
				if tt.handle != nil {
					return tt.handle(n)
				}
				return nil
			}, nil)
			if n != tt.wantFrames {
				t.Errorf("handled %d frames, want %d", n, tt.wantFrames)
			}
			tt.check(t, err)
		})
	}
}

// greedyCodec reports a frame longer than the bytes it was handed.
type greedyCodec struct{ lenCodec }

func (greedyCodec) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	if len(buf) < 4 {
		return 0, nil
	}
	return len(buf) + 1, nil
}
