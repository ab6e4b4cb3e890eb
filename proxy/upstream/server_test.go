package upstream_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// Payloads that steer the test server.
const (
	hold      = "hold"      // answer once release is closed
	twice     = "twice"     // answer twice
	heartbeat = "heartbeat" // send a heartbeat before answering
)

// server is an upstream on 127.0.0.1 that echoes each request's payload
// back in a response with the request's ID. It reads a connection's
// requests one by one, so a held request holds the ones behind it.
type server struct {
	ln      net.Listener
	release chan struct{}
	zeroIDs bool // answer with ID 0 (pipelined peers pair by order)
	streams bool // answer "stream N" and hold with parts (stream_call_test.go)
	reverse int  // answer in batches of this many, last first

	accepted, ended, heartbeats atomic.Int32

	mu    sync.Mutex
	conns []net.Conn
	seen  []uint64 // request IDs as the server received them
	sent  []string // two-way requests' payloads as the server received them
}

func newServer(t testing.TB, configure func(*server)) *server {
	t.Helper()
	return newServerOn(t, "127.0.0.1:0", configure)
}

// newServerOn is newServer listening on addr.
func newServerOn(t testing.TB, addr string, configure func(*server)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, release: make(chan struct{})}
	if configure != nil {
		configure(s)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			wg.Go(func() { s.serve(nc) })
		}
	})
	t.Cleanup(func() {
		s.releaseHeld()
		_ = ln.Close()
		s.closeConns()
		wg.Wait()
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

func (s *server) releaseHeld() {
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// closeConns closes every connection the server accepted.
func (s *server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, nc := range s.conns {
		_ = nc.Close()
	}
}

func (s *server) seenIDs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.seen...)
}

func (s *server) payloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

type request struct {
	kind    protocols.Kind
	id      uint64
	payload string
}

func readRequest(r *bufio.Reader) (request, error) {
	var hdr [idHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return request{}, err
	}
	body := make([]byte, int(binary.BigEndian.Uint32(hdr[:]))-(idHeader-4))
	if _, err := io.ReadFull(r, body); err != nil {
		return request{}, err
	}
	return request{protocols.Kind(hdr[4]), binary.BigEndian.Uint64(hdr[5:]), string(body)}, nil
}

func (s *server) serve(nc net.Conn) {
	defer s.ended.Add(1)
	r := bufio.NewReader(nc)
	var batch []request
	for {
		req, err := readRequest(r)
		if err != nil {
			return
		}
		switch req.kind {
		case protocols.KindHeartbeatReply:
			s.heartbeats.Add(1)
			continue
		case protocols.KindOneway:
			s.mu.Lock()
			s.seen = append(s.seen, req.id)
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		s.seen = append(s.seen, req.id)
		s.sent = append(s.sent, req.payload)
		s.mu.Unlock()
		var out []byte
		if s.streams {
			if err := s.stream(nc, req); err != nil {
				return
			}
			continue
		}
		switch req.payload {
		case hold:
			<-s.release
		case heartbeat:
			out = encodeFrame(out, protocols.KindHeartbeat, 7, "")
		}
		batch = append(batch, req)
		if len(batch) < max(s.reverse, 1) {
			continue
		}
		for i := len(batch) - 1; i >= 0; i-- {
			out = s.answer(out, batch[i])
		}
		batch = batch[:0]
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// stream answers req with the parts of a streamed response (a server
// with streams set).
func (s *server) stream(nc net.Conn, req request) error {
	var n int
	if _, err := fmt.Sscanf(req.payload, "stream %d", &n); err != nil && req.payload != hold {
		_, err := nc.Write(encodeFrame(nil, protocols.KindResponse, req.id, req.payload))
		return err
	}
	if req.payload == hold {
		n = 1
	}
	var out []byte
	for i := range n {
		out = encodeFrame(out, protocols.KindResponse|moreBit, req.id, fmt.Sprintf("part %d", i))
	}
	if req.payload == hold {
		if _, err := nc.Write(out); err != nil {
			return err
		}
		out = out[:0]
		<-s.release
	}
	_, err := nc.Write(encodeFrame(out, protocols.KindResponse, req.id, "end"))
	return err
}

func (s *server) answer(out []byte, req request) []byte {
	id := req.id
	if s.zeroIDs {
		id = 0
	}
	out = encodeFrame(out, protocols.KindResponse, id, req.payload)
	if req.payload == twice {
		out = encodeFrame(out, protocols.KindResponse, id, req.payload)
	}
	return out
}

// event is one outcome a Receiver was told.
type event struct {
	call    *upstream.Call
	respond bool
	payload string
	reason  protocols.Reason
	err     error
}

// recorder is a Receiver that queues every outcome.
type recorder struct{ events chan event }

func newRecorder() *recorder { return &recorder{events: make(chan event, 1024)} }

func (r *recorder) Respond(c *upstream.Call, m *protocols.Message, _ *wire.Batch) {
	r.events <- event{call: c, respond: true, payload: payloadOf(m.Raw)}
}

func (r *recorder) Fail(c *upstream.Call, reason protocols.Reason, err error, _ *wire.Batch) {
	r.events <- event{call: c, reason: reason, err: err}
}

// wait returns the next n events, failing the test after a timeout.
func (r *recorder) wait(t *testing.T, n int) []event {
	t.Helper()
	out := make([]event, 0, n)
	deadline := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case e := <-r.events:
			out = append(out, e)
		case <-deadline:
			t.Fatalf("got %d outcomes, want %d", len(out), n)
		}
	}
	return out
}

// quiet fails the test if another outcome arrives within a short while.
func (r *recorder) quiet(t *testing.T) {
	t.Helper()
	select {
	case e := <-r.events:
		t.Fatalf("unexpected extra outcome: %+v", e)
	case <-time.After(50 * time.Millisecond):
	}
}

// newCall returns a two-way (or oneway) call with the client's id.
func newCall(rcv upstream.Receiver, kind protocols.Kind, id uint64, payload string) *upstream.Call {
	raw := encodeFrame(nil, kind, id, payload)
	var m protocols.Message
	if _, err := (idCodec{}).Decode(raw, &m); err != nil {
		panic(err)
	}
	c := upstream.NewCall(&m)
	c.Receiver = rcv
	return c
}

// stats counts pool events.
type stats struct{ opened, closed, unknown atomic.Int32 }

func (s *stats) hooks() upstream.Stats {
	return upstream.Stats{
		ConnOpened:  func(string) { s.opened.Add(1) },
		ConnClosed:  func(string) { s.closed.Add(1) },
		UnknownResp: func(string) { s.unknown.Add(1) },
	}
}

// newPool returns a pool for addr from a fresh manager, drained at the end.
func newPool(t testing.TB, addr string, model protocols.Model, maxConns int) (*upstream.Pool, *stats) {
	t.Helper()
	st := &stats{}
	m := upstream.NewManager(zap.NewNop(), st.hooks())
	t.Cleanup(m.Drain)
	return m.Pool(addr, idCodec{model}, upstream.Options{ConnectTimeout: time.Second, MaxConnections: maxConns}), st
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// sendNow sends c and flushes at once, as a read loop does at the end of
// its batch.
func sendNow(p *upstream.Pool, c *upstream.Call) error {
	var b wire.Batch
	err := p.Send(c, &b)
	b.Flush()
	return err
}
