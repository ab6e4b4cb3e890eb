package xds_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/proxy/xdsclient"
)

// The lean sidecar (-xds.fleet h2): a delta ADS client speaking gRPC's
// wire protocol itself, on x/net's HTTP/2 framer, for the benchmarks'
// fleet. What it does as a proxy's xDS client (proxy/xdsclient, on
// grpc-go) does: one connection and one stream per sidecar (HTTP/2 with
// prior knowledge), a wildcard subscription to every type (the first
// request naming the node), an ACK request (a marshaled
// DeltaDiscoveryRequest with the response's nonce) for each response,
// PINGs and SETTINGS answered, the control plane's flow-control windows
// kept to, and the proxy's receive windows (xdsclient.ReceiveWindow) and
// read buffer (xdsclient.ReadBufferSize), its windows given back once a
// quarter is used, as gRPC does. What it does not: decode the resources
// (it reads each response's type, nonce, version, the names of its
// resources and of those removed, skipping each resource's body where it
// lies: docs/xds.md#scale), apply them, NACK, resolve names, TLS,
// retries in the stream, keepalive pings of its own.

// adsDeltaPath is the gRPC method of delta ADS.
const adsDeltaPath = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"

// h2Stream is a lean sidecar's connection and its one stream (ID 1).
type h2Stream struct {
	bw *bufio.Writer
	fr *http2.Framer
	// out is what is to be sent on the stream (gRPC messages, in parts
	// not copied: a resuming sidecar's first requests are the fleet's,
	// 1.5 MB at 2,000 services) and not yet sent; sendConn and
	// sendStream the windows the control plane allows; initialWindow
	// its SETTINGS_INITIAL_WINDOW_SIZE; maxFrame its
	// SETTINGS_MAX_FRAME_SIZE.
	out                  [][]byte
	sendConn, sendStream int64
	initialWindow        int64
	maxFrame             int
	// unacked is what was received and not yet given back in a
	// WINDOW_UPDATE.
	unacked int
}

// errStreamEnded is the end of a stream by the control plane;
// errWrongConfig a response not as expected, which fails the benchmark
// (the fleet does not reconnect).
var (
	errStreamEnded = errors.New("stream ended")
	errWrongConfig = errors.New("wrong config")
)

// runH2 is a lean sidecar's one connection: it returns when the
// connection or the stream ends, or a response is not what the sidecar
// expects (sc.expect: a sidecar new to the stream, one without have,
// gets every resource of its view in the first response of each type).
func (sc *sidecar) runH2(ctx context.Context, addr, node string, acked chan struct{}) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { _ = conn.Close() })()
	h := &h2Stream{bw: bufio.NewWriterSize(conn, 64<<10),
		sendConn: 65535, sendStream: 65535, initialWindow: 65535, maxFrame: 16384}
	h.fr = http2.NewFramer(h.bw, bufio.NewReaderSize(conn, xdsclient.ReadBufferSize))
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := h.open(addr); err != nil {
		return err
	}
	for i, typ := range adsTypes {
		var parts [][]byte
		if sc.initial != nil {
			// Marshaled once for the fleet, this sidecar's node added
			// to the first (protobuf merges concatenated messages).
			parts = [][]byte{sc.initial[i]}
		} else {
			b, err := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ})
			if err != nil {
				return err
			}
			parts = [][]byte{b}
		}
		if i == 0 {
			b, err := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: node}})
			if err != nil {
				return err
			}
			parts = append([][]byte{b}, parts...)
		}
		h.queue(parts...)
	}
	got := map[string]bool{}
	dec := &deltaDecoder{onResponse: func(r *deltaResponse) error {
		typ := string(r.typeURL)
		if !slices.Contains(adsTypes, typ) || len(r.nonce) == 0 {
			return fmt.Errorf("%w: a response of type %q, nonce %q", errWrongConfig, typ, r.nonce)
		}
		if !got[typ] && sc.have == nil && r.resources != sc.expect[typ] {
			return fmt.Errorf("%w: first response of %s: %d resources (name digest %x), expected %d (%x)",
				errWrongConfig, typ, r.resources.Count, r.resources.Sum, sc.expect[typ].Count, sc.expect[typ].Sum)
		}
		got[typ] = true
		if sc.seen != nil {
			sc.seen(r)
		}
		ack, err := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: string(r.nonce)})
		if err != nil {
			return err
		}
		h.queue(ack)
		if typ == resourcev3.RouteType {
			v := string(r.version)
			sc.route.Store(&v)
		}
		sc.acks.Add(1)
		select {
		case acked <- struct{}{}:
		default:
		}
		return nil
	}}
	for {
		if err := h.flush(); err != nil {
			return err
		}
		f, err := h.fr.ReadFrame()
		if err != nil {
			return err
		}
		if err := h.handle(f, dec); err != nil {
			return err
		}
	}
}

// open writes the connection preface, the sidecar's settings (its
// stream's receive window) and window (the connection's), and the
// stream's headers.
func (h *h2Stream) open(addr string) error {
	if _, err := h.bw.WriteString(http2.ClientPreface); err != nil {
		return err
	}
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: xdsclient.ReceiveWindow}); err != nil {
		return err
	}
	if err := h.fr.WriteWindowUpdate(0, xdsclient.ReceiveWindow-65535); err != nil {
		return err
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", adsDeltaPath}, {":authority", addr},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return err
		}
	}
	return h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
}

// queue adds a gRPC message made of parts to what is to be sent.
func (h *h2Stream) queue(parts ...[]byte) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	h.out = append(h.out, binary.BigEndian.AppendUint32([]byte{0}, uint32(size)))
	h.out = append(h.out, parts...)
}

// flush sends what is queued as far as the control plane's windows
// allow, and writes out the frames written.
func (h *h2Stream) flush() error {
	for len(h.out) > 0 && h.sendConn > 0 && h.sendStream > 0 {
		n := min(len(h.out[0]), int(h.sendConn), int(h.sendStream), h.maxFrame)
		if err := h.fr.WriteData(1, false, h.out[0][:n]); err != nil {
			return err
		}
		h.sendConn -= int64(n)
		h.sendStream -= int64(n)
		if h.out[0] = h.out[0][n:]; len(h.out[0]) == 0 {
			h.out = h.out[1:]
		}
	}
	return h.bw.Flush()
}

// handle handles a frame read.
func (h *h2Stream) handle(f http2.Frame, dec *deltaDecoder) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		if err := dec.write(f.Data()); err != nil {
			return err
		}
		if f.StreamEnded() {
			return fmt.Errorf("%w without trailers", errStreamEnded)
		}
		// Flow control counts the whole payload, padding included.
		h.unacked += int(f.Length)
		if h.unacked >= xdsclient.ReceiveWindow/4 {
			if err := h.fr.WriteWindowUpdate(0, uint32(h.unacked)); err != nil {
				return err
			}
			if err := h.fr.WriteWindowUpdate(1, uint32(h.unacked)); err != nil {
				return err
			}
			h.unacked = 0
		}
	case *http2.MetaHeadersFrame:
		if f.StreamEnded() {
			return fmt.Errorf("%w: grpc-status %s: %s", errStreamEnded, headerValue(f, "grpc-status"), headerValue(f, "grpc-message"))
		}
		if s := f.PseudoValue("status"); s != "200" {
			return fmt.Errorf("response headers: :status %s", s)
		}
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		if err := f.ForeachSetting(func(s http2.Setting) error {
			switch s.ID {
			case http2.SettingInitialWindowSize:
				h.sendStream += int64(s.Val) - h.initialWindow
				h.initialWindow = int64(s.Val)
			case http2.SettingMaxFrameSize:
				h.maxFrame = int(s.Val)
			}
			return nil
		}); err != nil {
			return err
		}
		return h.fr.WriteSettingsAck()
	case *http2.PingFrame:
		if !f.IsAck() {
			return h.fr.WritePing(true, f.Data)
		}
	case *http2.WindowUpdateFrame:
		switch f.StreamID {
		case 0:
			h.sendConn += int64(f.Increment)
		case 1:
			h.sendStream += int64(f.Increment)
		}
	case *http2.GoAwayFrame:
		return fmt.Errorf("GOAWAY %v: %s", f.ErrCode, f.DebugData())
	case *http2.RSTStreamFrame:
		return fmt.Errorf("%w: RST_STREAM %v", errStreamEnded, f.ErrCode)
	}
	return nil
}

// headerValue is the value of the regular header field name in f.
func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}
