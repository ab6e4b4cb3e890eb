// Package thrift runs real apache/thrift (v0.25.0) Go servers and clients,
// built on the code generated from echo.thrift into gen-go/echo, for the
// interop tests.
//
// A server serves Echo as the default processor and both Echo and Admin
// under their multiplexed names, so plain and TMultiplexedProtocol clients
// reach the same handlers. Echo.echo and Echo.ping reply
// "<name>|<msg>" on framed and buffered transports and
// "<name>|<msg>|<x-tag>" on THeader (the value of the x-tag info header,
// empty when absent); Echo.fire (oneway) is counted; Admin.version returns
// the name. An echo or ping message "sleep:<ms>" is answered after that
// many milliseconds, for timeout tests.
package thrift

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metamesh/metamesh/testdata/peers/thrift/gen-go/echo"
)

// Combo is a transport and protocol pair.
type Combo struct {
	Transport string // framed, buffered or header
	Protocol  string // binary or compact
}

func (c Combo) String() string { return c.Transport + "+" + c.Protocol }

// Header reports whether c uses the THeader transport.
func (c Combo) Header() bool { return c.Transport == "header" }

// Combos are the pairs the interop tests cover.
var Combos = []Combo{
	{"framed", "binary"},
	{"buffered", "binary"},
	{"framed", "compact"},
	{"header", "binary"},
	{"header", "compact"},
}

// conf is the configuration of a client (timeout set) or a server (none:
// the proxy's idle upstream connections must not be dropped).
func (c Combo) conf(client bool) *thrift.TConfiguration {
	conf := &thrift.TConfiguration{}
	if client {
		conf.ConnectTimeout, conf.SocketTimeout = 5*time.Second, 10*time.Second
	}
	if c.Header() {
		id := thrift.THeaderProtocolBinary
		if c.Protocol == "compact" {
			id = thrift.THeaderProtocolCompact
		}
		conf.THeaderProtocolID = thrift.THeaderProtocolIDPtrMust(id)
	}
	return conf
}

func (c Combo) factories(client bool) (thrift.TTransportFactory, thrift.TProtocolFactory, error) {
	conf := c.conf(client)
	if c.Header() {
		if c.Protocol != "binary" && c.Protocol != "compact" {
			return nil, nil, fmt.Errorf("unknown protocol %q", c.Protocol)
		}
		return thrift.NewTHeaderTransportFactoryConf(nil, conf), thrift.NewTHeaderProtocolFactoryConf(conf), nil
	}
	var tf thrift.TTransportFactory
	switch c.Transport {
	case "framed":
		tf = thrift.NewTFramedTransportFactoryConf(thrift.NewTTransportFactory(), conf)
	case "buffered":
		tf = thrift.NewTBufferedTransportFactory(8192)
	default:
		return nil, nil, fmt.Errorf("unknown transport %q", c.Transport)
	}
	switch c.Protocol {
	case "binary":
		return tf, thrift.NewTBinaryProtocolFactoryConf(conf), nil
	case "compact":
		return tf, thrift.NewTCompactProtocolFactoryConf(conf), nil
	}
	return nil, nil, fmt.Errorf("unknown protocol %q", c.Protocol)
}

// Server is a running TSimpleServer.
type Server struct {
	Addr   string
	Name   string
	oneway atomic.Int64
}

// Oneway is how many Echo.fire calls the server has handled.
func (s *Server) Oneway() int64 { return s.oneway.Load() }

type handler struct {
	s      *Server
	header bool
}

func (h handler) reply(ctx context.Context, msg string) string {
	if ms, ok := strings.CutPrefix(msg, "sleep:"); ok {
		if n, err := strconv.Atoi(ms); err == nil {
			time.Sleep(time.Duration(n) * time.Millisecond)
		}
	}
	if !h.header {
		return h.s.Name + "|" + msg
	}
	tag, _ := thrift.GetHeader(ctx, "x-tag")
	return h.s.Name + "|" + msg + "|" + tag
}

func (h handler) Echo(ctx context.Context, msg string) (string, error) { return h.reply(ctx, msg), nil }
func (h handler) Ping(ctx context.Context, msg string) (string, error) { return h.reply(ctx, msg), nil }
func (h handler) Fire(context.Context, string) error {
	h.s.oneway.Add(1)
	return nil
}
func (h handler) Version(context.Context) (string, error) { return h.s.Name, nil }

// trackingListener remembers accepted connections so they can be closed
// before TSimpleServer.Stop, which otherwise waits for every peer to hang up.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
}

// StartServer starts a TSimpleServer named name on 127.0.0.1:0 speaking
// combo, stopped when the test ends.
func StartServer(t testing.TB, name string, combo Combo) *Server {
	t.Helper()
	s, stop, err := Serve(name, "127.0.0.1:0", combo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

// Serve starts a TSimpleServer named name on addr speaking combo; stop
// closes its connections and waits for it to end.
func Serve(name, addr string, combo Combo) (s *Server, stop func(), err error) {
	tf, pf, err := combo.factories(false)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	tl := &trackingListener{Listener: ln}
	sock := thrift.NewTServerSocketFromFactoryTimeout(func(net.Addr) (net.Listener, error) { return tl, nil }, ln.Addr(), 0)
	s = &Server{Addr: ln.Addr().String(), Name: name}
	h := handler{s: s, header: combo.Header()}
	mp := thrift.NewTMultiplexedProcessor()
	mp.RegisterDefault(echo.NewEchoProcessor(h))
	mp.RegisterProcessor("Echo", echo.NewEchoProcessor(h))
	mp.RegisterProcessor("Admin", echo.NewAdminProcessor(h))
	srv := thrift.NewTSimpleServer4(mp, sock, tf, pf)
	if err := srv.Listen(); err != nil {
		_ = ln.Close()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve()
	}()
	return s, func() {
		// No new connection from here on (one accepted between closeConns
		// and Stop would go on serving), then close those there are.
		_ = tl.Close()
		tl.closeConns()
		_ = srv.Stop()
		<-done
	}, nil
}

// Client is one client connection.
type Client struct {
	*echo.EchoClient
	// Admin is set on multiplexed clients.
	Admin *echo.AdminClient
	trans thrift.TTransport
}

// Close closes the connection.
func (c *Client) Close() error { return c.trans.Close() }

// Dial opens a client connection to addr speaking combo, closed when the
// test ends.
func Dial(t testing.TB, addr string, combo Combo) *Client {
	t.Helper()
	c, err := Open(addr, combo, "")
	if err != nil {
		t.Fatalf("thrift %s client: %v", combo, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// DialMultiplexed opens a client connection to addr speaking combo whose
// Echo calls are sent as "<service>:<method>" and Admin calls as
// "Admin:<method>" (TMultiplexedProtocol), closed when the test ends.
func DialMultiplexed(t testing.TB, addr string, combo Combo, service string) *Client {
	t.Helper()
	c, err := Open(addr, combo, service)
	if err != nil {
		t.Fatalf("thrift multiplexed %s client: %v", combo, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Open opens a client connection to addr speaking combo; with a service,
// its Echo calls are multiplexed under that name and Admin calls under
// "Admin".
func Open(addr string, combo Combo, service string) (*Client, error) {
	tf, pf, err := combo.factories(true)
	if err != nil {
		return nil, err
	}
	sock := thrift.NewTSocketConf(addr, combo.conf(true))
	trans, err := tf.GetTransport(sock)
	if err != nil {
		return nil, err
	}
	if err := trans.Open(); err != nil {
		return nil, err
	}
	proto := pf.GetProtocol(trans)
	c := &Client{trans: trans}
	if service == "" {
		c.EchoClient = echo.NewEchoClient(thrift.NewTStandardClient(proto, proto))
		return c, nil
	}
	ep := thrift.NewTMultiplexedProtocol(proto, service)
	c.EchoClient = echo.NewEchoClient(thrift.NewTStandardClient(ep, ep))
	ap := thrift.NewTMultiplexedProtocol(proto, "Admin")
	c.Admin = echo.NewAdminClient(thrift.NewTStandardClient(ap, ap))
	return c, nil
}

// WithTag returns ctx with the THeader info header x-tag set to tag (sent
// only by THeader clients).
func WithTag(ctx context.Context, tag string) context.Context { return WithHeader(ctx, "x-tag", tag) }

// WithHeader returns ctx with the THeader info header key set to value
// (sent only by THeader clients).
func WithHeader(ctx context.Context, key, value string) context.Context {
	ctx = thrift.SetHeader(ctx, key, value)
	return thrift.SetWriteHeaderList(ctx, []string{key})
}
