// Package peer is a small lprpc client and server: the example's own
// peers, used by its end-to-end test and handy for trying the codec by hand.
package peer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/metamesh/metamesh/examples/lprpc"
	"github.com/metamesh/metamesh/protocols"
)

// Handler answers a request: the response's headers and body, or an error
// frame when status is not 0.
type Handler func(req *Request) (headers []protocols.Header, body []byte, status uint16)

// Request is a decoded request a Handler sees. Its fields are copies.
type Request struct {
	Headers []protocols.Header
	Body    []byte
	Oneway  bool
}

// Header returns the value of key, or "".
func (r *Request) Header(key string) string { return get(r.Headers, key) }

func get(hs []protocols.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}

// Server serves lprpc on a listener, one goroutine per connection,
// answering requests in order of arrival and heartbeats itself.
type Server struct {
	ln         net.Listener
	handle     Handler
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      map[net.Conn]bool
	Heartbeats atomic.Int64 // heartbeats answered
	Requests   atomic.Int64 // requests handled, oneway included
}

// Serve starts a server on addr ("127.0.0.1:0" for any port).
func Serve(addr string, h Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, handle: h, conns: map[net.Conn]bool{}}
	s.wg.Go(s.accept)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and closes its connections.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		})
	}
}

func (s *Server) serve(c net.Conn) {
	codec, _ := lprpc.New(nil)
	r := newReader(c, codec)
	w := bufio.NewWriter(c)
	var out []byte
	for {
		msg, err := r.next()
		if err != nil {
			return
		}
		out = out[:0]
		switch msg.Kind {
		case protocols.KindHeartbeat:
			s.Heartbeats.Add(1)
			out = codec.HeartbeatReply(out, msg)
		case protocols.KindRequest, protocols.KindOneway:
			s.Requests.Add(1)
			req := &Request{Headers: append([]protocols.Header(nil), msg.Headers.All()...),
				Body: append([]byte(nil), lprpc.Body(msg)...), Oneway: msg.Kind == protocols.KindOneway}
			hs, body, status := s.handle(req)
			if req.Oneway {
				continue
			}
			f := lprpc.Frame{Flags: lprpc.FlagResponse, ID: msg.ID, Headers: hs, Body: body}
			if status != 0 {
				f.Flags |= lprpc.FlagError
				f.Status = status
			}
			out = lprpc.AppendFrame(out, f)
		default:
			continue
		}
		if _, err := w.Write(out); err != nil {
			return
		}
		if r.buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// reader reads frames from a connection with a codec.
type reader struct {
	r     io.Reader
	codec protocols.Codec
	buf   []byte
	start int
	msg   protocols.Message
}

func newReader(r io.Reader, c protocols.Codec) *reader {
	return &reader{r: r, codec: c, buf: make([]byte, 0, 4096)}
}

func (r *reader) buffered() int { return len(r.buf) - r.start }

// next returns the next frame, valid until the following call.
func (r *reader) next() (*protocols.Message, error) {
	for {
		n, err := r.codec.Decode(r.buf[r.start:], &r.msg)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			r.start += n
			return &r.msg, nil
		}
		if r.start > 0 { // make room: move the partial frame to the front
			r.buf = r.buf[:copy(r.buf, r.buf[r.start:])]
			r.start = 0
		}
		if len(r.buf) == cap(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)[:len(r.buf)]
		}
		m, err := r.r.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+m]
		if err != nil && m == 0 {
			return nil, err
		}
	}
}

// Response is what a Client call returns.
type Response struct {
	Headers []protocols.Header
	Body    []byte
	// Status is not 0 for an error frame (the proxy's local replies
	// included: lprpc.StatusNoRoute, …), whose Body is the message.
	Status uint16
}

// Header returns the value of key, or "".
func (r *Response) Header(key string) string { return get(r.Headers, key) }

// Client is a multiplexed lprpc client: calls from any goroutine share one
// connection and are matched to responses by ID.
type Client struct {
	conn    net.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[uint64]chan *Response
	err     error
	nextID  atomic.Uint64
	done    chan struct{}
}

// ErrClosed is returned by calls on a closed client.
var ErrClosed = errors.New("lprpc: client closed")

// Dial connects a client to addr.
func Dial(addr string) (*Client, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, pending: map[uint64]chan *Response{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

// Close closes the connection; calls waiting fail.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

func (c *Client) read() {
	defer close(c.done)
	codec, _ := lprpc.New(nil)
	r := newReader(c.conn, codec)
	var err error
	for {
		var msg *protocols.Message
		if msg, err = r.next(); err != nil {
			break
		}
		if !msg.Kind.IsResponse() && msg.Kind != protocols.KindHeartbeatReply {
			continue
		}
		resp := &Response{Headers: append([]protocols.Header(nil), msg.Headers.All()...),
			Body: append([]byte(nil), lprpc.Body(msg)...)}
		if msg.Kind == protocols.KindError {
			resp.Status = uint16(msg.Status)
		}
		c.mu.Lock()
		ch := c.pending[msg.ID]
		delete(c.pending, msg.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("lprpc: connection lost: %w", err)
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// Call sends a request with headers and body and waits for its response.
func (c *Client) Call(headers []protocols.Header, body []byte) (*Response, error) {
	return c.roundTrip(lprpc.Frame{Headers: headers, Body: body})
}

// Heartbeat sends a heartbeat and waits for its reply.
func (c *Client) Heartbeat() error {
	_, err := c.roundTrip(lprpc.Frame{Flags: lprpc.FlagHeartbeat})
	return err
}

func (c *Client) roundTrip(f lprpc.Frame) (*Response, error) {
	f.ID = c.nextID.Add(1)
	ch := make(chan *Response, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.pending[f.ID] = ch
	c.mu.Unlock()
	c.wmu.Lock()
	_, err := c.conn.Write(lprpc.AppendFrame(nil, f))
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, f.ID)
		c.mu.Unlock()
		return nil, err
	}
	resp, ok := <-ch
	if !ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		return nil, c.err
	}
	return resp, nil
}
