package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/proxy/wire"
)

// echoServer stands in for the greeter-server or the thrift-server: a
// server made of a workload's codec that answers the echo call with
// "v1|"+argument, in any order. It can misbehave to test the bench's
// checks.
type echoServer struct {
	ln       net.Listener
	work     *workload
	codec    protocols.Codec
	corrupt  int   // if > 0, every corrupt-th reply echoes a wrong name
	closeAt  int64 // if > 0, a connection is closed at its closeAt-th request
	requests atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func startEcho(t *testing.T, w *workload, e *echoServer) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.ln, e.work = ln, w
	if e.codec, err = w.newCodec(); err != nil {
		t.Fatal(err)
	}
	go e.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, c := range e.conns {
			_ = c.Close()
		}
	})
	return e
}

func (e *echoServer) addr() string { return e.ln.Addr().String() }

func (e *echoServer) serve() {
	for {
		nc, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		e.conns = append(e.conns, nc)
		e.mu.Unlock()
		go e.serveConn(nc)
	}
}

func (e *echoServer) serveConn(nc net.Conn) {
	w := wire.NewWriter(nc, 0)
	defer w.Close()
	var n int64
	_ = wire.ReadFrames(nc, e.codec, func(m *protocols.Message) error {
		n++
		if e.closeAt > 0 && n >= e.closeAt {
			return errors.New("closing as asked")
		}
		total := e.requests.Add(1)
		peer := echoPeers[e.work.name]
		arg, err := peer.arg(m)
		if err != nil {
			return err
		}
		if e.corrupt > 0 && total%int64(e.corrupt) == 0 {
			arg = "corrupted" + arg
		}
		id, reply := m.ID, "v1|"+arg
		// Reply after a random short delay, so replies overtake each other.
		time.AfterFunc(time.Duration(rand.IntN(200))*time.Microsecond, func() {
			_ = w.Append(func(dst []byte) []byte { return peer.reply(dst, id, reply) })
		})
		return nil
	}, nil)
}

// echoPeer is how the echo server reads a request's argument and writes a
// reply, for one workload.
type echoPeer struct {
	method string // the method attribute of a request
	arg    func(m *protocols.Message) (string, error)
	reply  func(dst []byte, id uint64, value string) []byte
}

var echoPeers = map[string]echoPeer{
	"dubbo": {
		method: greeterMethod,
		arg: func(m *protocols.Message) (string, error) {
			if method, _ := m.Headers.Get("method"); m.Kind != protocols.KindRequest || method != greeterMethod {
				return "", errors.New("not a SayHello request")
			}
			return lastStringArg(m.Raw)
		},
		reply: func(dst []byte, id uint64, value string) []byte {
			return dubbo.AppendResponse(dst, id, dubbo.StatusOK, value)
		},
	},
	"thrift": {
		method: echoMethod,
		arg:    thriftEchoArg,
		reply: func(dst []byte, id uint64, value string) []byte {
			return appendThriftMessage(dst, thriftReply, echoMethod, uint32(id), 0, value)
		},
	},
}

// thriftEchoArg reads the msg argument (field 1) of an echo CALL.
func thriftEchoArg(m *protocols.Message) (string, error) {
	tm, err := parseThriftMessage(m.Raw)
	if err != nil {
		return "", err
	}
	if m.Kind != protocols.KindRequest || tm.typ != thriftCall || string(tm.name) != echoMethod {
		return "", fmt.Errorf("not an echo call: kind %s, type %d, name %q", m.Kind, tm.typ, tm.name)
	}
	var arg []byte
	found := false
	err = tm.fields(func(id int16, typ byte, val []byte) {
		if id == 1 && typ == thriftString {
			arg, found = val, true
		}
	})
	if err == nil && !found {
		err = errors.New("echo call without its msg argument")
	}
	return string(arg), err
}

// lastStringArg reads the single ASCII string argument of a request frame
// written by dubbo.AppendRequest: the sixth hessian2 string of the body,
// after the Dubbo version, service, version, method and types.
func lastStringArg(frame []byte) (string, error) {
	pos := 16
	var s []byte
	for range 6 {
		s = s[:0]
		for final := false; !final; {
			if pos >= len(frame) {
				return "", errors.New("short frame")
			}
			tag := frame[pos]
			var n int
			final = true
			switch {
			case tag <= 0x1f:
				n, pos = int(tag), pos+1
			case tag >= 0x30 && tag <= 0x33:
				n, pos = int(tag-0x30)<<8|int(frame[pos+1]), pos+2
			case tag == 'S' || tag == 'R':
				n, pos, final = int(frame[pos+1])<<8|int(frame[pos+2]), pos+3, tag == 'S'
			default:
				return "", errors.New("not a string")
			}
			if pos+n > len(frame) {
				return "", errors.New("short string")
			}
			s = append(s, frame[pos:pos+n]...) // ASCII: one byte per unit
			pos += n
		}
	}
	return string(s), nil
}
