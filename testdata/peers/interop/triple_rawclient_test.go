package interop

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// A client that keeps sending on streams the proxy has answered (it
// never ends them nor resets them itself, as grpc-go clients do): each
// answer is followed by RST_STREAM NO_ERROR, which tells it to stop
// (RFC 9113, section 8.1), and the proxy forgets the stream: it no
// longer counts against maxConcurrentStreams (2 here; without the reset
// such streams stay open in the proxy until the connection ends, and a
// third would break the limit). The streams' service has no route: the
// proxy answers each at its first message (UNIMPLEMENTED).
func TestTripleAnsweredStreamReset(t *testing.T) {
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: "127.0.0.1:1",
		CodecConfig: `{"maxConcurrentStreams": 2}`}
	startProxyWith(t, r.resources(t))
	nc, err := net.Dial("tcp", r.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(nc, nc)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, stream := range []uint32{1, 3, 5, 7} {
		block.Reset()
		for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/com.example.Missing/Echo"},
			{":authority", "metamesh"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		// One whole message, without END_STREAM: a stream.
		if err := fr.WriteData(stream, false, []byte{0, 0, 0, 0, 2, 'h', 'i'}); err != nil {
			t.Fatal(err)
		}
		status := ""
		for reset := false; !reset; {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("stream %d: %v (answered: grpc-status %q)", stream, err, status)
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				t.Fatalf("stream %d: the proxy went away: %v %q", stream, f.ErrCode, f.DebugData())
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.MetaHeadersFrame:
				if f.StreamID == stream && f.StreamEnded() {
					status = f.PseudoValue("status") + " grpc-status " + headerValue(f, "grpc-status")
				}
			case *http2.RSTStreamFrame:
				if f.StreamID != stream || f.ErrCode != http2.ErrCodeNo || status == "" {
					t.Fatalf("RST_STREAM %d %v after the answer %q; want stream %d's NO_ERROR after its answer", f.StreamID, f.ErrCode, status, stream)
				}
				reset = true
			}
		}
		if status != "200 grpc-status 12" {
			t.Fatalf("stream %d answered %q, want 200 with grpc-status 12 (no route)", stream, status)
		}
		// Its client goes on sending: the proxy drops it.
		if err := fr.WriteData(stream, false, []byte{0, 0, 0, 0, 2, 'h', 'o'}); err != nil {
			t.Fatal(err)
		}
	}
}

// headerValue is the value of a regular header field of f.
func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}
