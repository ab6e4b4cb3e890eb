// Command triple-peer is a real dubbo-go v3.3.0 provider or consumer on
// the Triple protocol (gRPC over HTTP/2, protobuf messages: the
// well-known google.protobuf.StringValue, so no generated code) used
// by metamesh's Triple interop tests. It runs as a subprocess, built
// without the race detector (dubbo-go has races of its own).
//
//	triple-peer serve --addr A --version V [--interface I]
//
// exports I and prints "ready A" once it accepts connections; SIGTERM
// stops it. Methods: SayHello(name) → "V|name"; Attachment(key) → "V|<the
// request header or attachment key>"; Echo, a bidirectional stream: each
// message m back as "V|m" as it comes.
//
//	triple-peer call --addr A [--interface I] --method M --arg S [--n N] [--c C] [--attach k=v]…
//
// makes N calls (C at a time) of M(S) through one client and prints one
// JSON line: the replies counted by their version label, the number of
// failed calls and the first failures' texts.
//
//	triple-peer echo --addr A [--interface I] --n N --size S
//
// sends N messages of S bytes (message i begins with i as 8 digits) on one
// Echo stream while reading the answers, slowly (1 ms every 5), and prints
// the same JSON line: the answers counted by version label, and as
// failures those missing or out of order.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	dubbolog "dubbo.apache.org/dubbo-go/v3/logger"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	triple_protocol "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"
	"dubbo.apache.org/dubbo-go/v3/server"
	gostlog "github.com/dubbogo/gost/log/logger"
	"google.golang.org/protobuf/types/known/wrapperspb"

	_ "dubbo.apache.org/dubbo-go/v3/protocol/triple"

	_ "github.com/metamesh/metamesh/testdata/peers/internal/dubboplugins"
)

// DefaultInterface is the interface served and called by default.
const DefaultInterface = "org.apache.dubbo.samples.triple.Greeter"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: triple-peer serve|call [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "call":
		err = call(os.Args[2:])
	case "echo":
		err = echo(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "triple-peer:", err)
		os.Exit(1)
	}
}

// Greeter is the provider.
type Greeter struct{ version string }

func (g *Greeter) SayHello(_ context.Context, name string) (string, error) {
	return g.version + "|" + name, nil
}

// Attachment returns the request header (attachment) key as the provider
// received it; key "*" lists them all.
func (g *Greeter) Attachment(ctx context.Context, key string) (string, error) {
	atts, _ := ctx.Value(constant.AttachmentKey).(map[string]interface{})
	if key == "*" {
		var all []string
		for k, v := range atts {
			all = append(all, fmt.Sprintf("%s=%v", k, v))
		}
		sort.Strings(all)
		return g.version + "|" + strings.Join(all, " "), nil
	}
	v := ""
	switch a := atts[key].(type) {
	case string:
		v = a
	case []string:
		v = strings.Join(a, ",")
	}
	return g.version + "|" + v, nil
}

// serviceInfo describes Greeter's methods to dubbo-go's Triple server as
// its generated code would (PEERS.md quirk 1: Register needs one).
func serviceInfo(iface string) *common.ServiceInfo {
	method := func(name string, fn func(*Greeter, context.Context, string) (string, error)) common.MethodInfo {
		return common.MethodInfo{Name: name, Type: constant.CallUnary,
			ReqInitFunc: func() interface{} { return new(wrapperspb.StringValue) },
			MethodFunc: func(ctx context.Context, args []interface{}, handler interface{}) (interface{}, error) {
				out, err := fn(handler.(*Greeter), ctx, args[0].(*wrapperspb.StringValue).GetValue())
				if err != nil {
					return nil, err
				}
				return triple_protocol.NewResponse(wrapperspb.String(out)), nil
			}}
	}
	return &common.ServiceInfo{InterfaceName: iface, ServiceType: &Greeter{}, Methods: []common.MethodInfo{
		method("SayHello", (*Greeter).SayHello),
		method("Attachment", (*Greeter).Attachment),
		{Name: "Echo", Type: constant.CallBidiStream,
			StreamInitFunc: func(base interface{}) interface{} { return base },
			MethodFunc: func(ctx context.Context, args []interface{}, handler interface{}) (interface{}, error) {
				return nil, handler.(*Greeter).Echo(ctx, args[0].(*triple_protocol.BidiStream))
			}},
	}}
}

// Echo answers each message m of a bidirectional stream with "V|m".
func (g *Greeter) Echo(_ context.Context, stream *triple_protocol.BidiStream) error {
	for {
		in := new(wrapperspb.StringValue)
		if err := stream.Receive(in); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.Send(wrapperspb.String(g.version + "|" + in.GetValue())); err != nil {
			return err
		}
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:20000", "host:port to listen on")
	version := fs.String("version", "v1", "version label of every reply")
	iface := fs.String("interface", DefaultInterface, "interface to export")
	_ = fs.Parse(args)
	gostlog.SetLoggerLevel("warn")
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return err
	}
	ins, err := dubbo.NewInstance(
		dubbo.WithName("metamesh-triple-"+*version),
		dubbo.WithRemoteMetadata(), // PEERS.md quirk 2
		dubbo.WithProtocol(protocol.WithTriple(), protocol.WithIp(host), protocol.WithPort(port)),
		dubbo.WithLogger(dubbolog.WithLevel("warn")),
		dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()),
	)
	if err != nil {
		return err
	}
	gostlog.SetLoggerLevel("warn")
	srv, err := ins.NewServer()
	if err != nil {
		return err
	}
	if err := srv.Register(&Greeter{version: *version}, serviceInfo(*iface), server.WithInterface(*iface),
		server.WithNotRegister()); err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", *addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			break
		}
		select {
		case err := <-serveErr:
			return fmt.Errorf("serve: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting on %s after 30s", *addr)
		}
	}
	fmt.Printf("ready %s\n", *addr)
	select {
	case <-sigs:
		return nil
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
}

// Result is what call prints.
type Result struct {
	Replies map[string]int `json:"replies"` // by version label
	Sample  string         `json:"sample"`  // one reply
	Failed  int            `json:"failed"`
	Errors  []string       `json:"errors"` // the first few
}

type attachFlag map[string]string

func (a attachFlag) String() string { return fmt.Sprint(map[string]string(a)) }
func (a attachFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want k=v, got %q", s)
	}
	a[k] = v
	return nil
}

func call(args []string) error {
	fs := flag.NewFlagSet("call", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port to call (the proxy's listener)")
	iface := fs.String("interface", DefaultInterface, "interface to call")
	method := fs.String("method", "SayHello", "method to call")
	arg := fs.String("arg", "alice", "its string argument")
	n := fs.Int("n", 1, "calls")
	conc := fs.Int("c", 1, "calls at a time")
	attach := attachFlag{}
	fs.Var(attach, "attach", "k=v sent with every call (repeatable)")
	_ = fs.Parse(args)
	gostlog.SetLoggerLevel("warn")

	cli, err := newConsumer()
	if err != nil {
		return err
	}
	// As generated code does: with a ClientInfo, dubbo-go uses its Triple
	// client (without, an older gRPC-based one that needs a stub).
	info := &client.ClientInfo{InterfaceName: *iface, MethodNames: []string{*method},
		ConnectionInjectFunc: func(interface{}, *client.Connection) {}}
	conn, err := cli.DialWithInfo(*iface, info, client.WithURL("tri://"+*addr), client.WithRequestTimeout(10*time.Second))
	if err != nil {
		return err
	}
	ctx := context.Background()
	if len(attach) > 0 {
		atts := map[string]interface{}{}
		for k, v := range attach {
			atts[k] = v
		}
		ctx = context.WithValue(ctx, constant.AttachmentKey, atts)
	}
	res := Result{Replies: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				a := *arg
				if *n > 1 {
					a = fmt.Sprintf("%s-%d", *arg, i)
				}
				out := new(wrapperspb.StringValue)
				err := conn.CallUnary(ctx, []interface{}{wrapperspb.String(a)}, out, *method)
				reply := out.GetValue()
				mu.Lock()
				switch {
				case err != nil:
					res.Failed++
					if len(res.Errors) < 5 {
						res.Errors = append(res.Errors, err.Error())
					}
				case *method == "SayHello" && !strings.HasSuffix(reply, "|"+a):
					res.Failed++
					if len(res.Errors) < 5 {
						res.Errors = append(res.Errors, fmt.Sprintf("call %d: reply %q is not for %q", i, reply, a))
					}
				default:
					v, _, _ := strings.Cut(reply, "|")
					res.Replies[v]++
					res.Sample = reply
				}
				mu.Unlock()
			}
		}()
	}
	for i := range *n {
		next <- i
	}
	close(next)
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(res)
}

func echo(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port to call (the proxy's listener)")
	iface := fs.String("interface", DefaultInterface, "interface to call")
	n := fs.Int("n", 1000, "messages")
	size := fs.Int("size", 64, "bytes of each message (at least 8)")
	_ = fs.Parse(args)
	gostlog.SetLoggerLevel("warn")
	cli, err := newConsumer()
	if err != nil {
		return err
	}
	info := &client.ClientInfo{InterfaceName: *iface, MethodNames: []string{"Echo"},
		ConnectionInjectFunc: func(interface{}, *client.Connection) {}}
	conn, err := cli.DialWithInfo(*iface, info, client.WithURL("tri://"+*addr))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	raw, err := conn.CallBidiStream(ctx, "Echo")
	if err != nil {
		return err
	}
	stream := raw.(*triple_protocol.BidiStreamForClient)
	res := Result{Replies: map[string]int{}}
	fail := func(format string, a ...any) {
		res.Failed++
		if len(res.Errors) < 5 {
			res.Errors = append(res.Errors, fmt.Sprintf(format, a...))
		}
	}
	sent := make(chan error, 1)
	go func() {
		pad := strings.Repeat("d", max(*size-8, 0))
		for i := range *n {
			if err := stream.Send(wrapperspb.String(fmt.Sprintf("%08d", i) + pad)); err != nil {
				sent <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		sent <- stream.CloseRequest()
	}()
	for i := range *n {
		out := new(wrapperspb.StringValue)
		if err := stream.Receive(out); err != nil {
			fail("answer %d: %v", i, err)
			res.Failed += *n - i - 1
			break
		}
		v, m, _ := strings.Cut(out.GetValue(), "|")
		if len(m) != max(*size, 8) || m[:8] != fmt.Sprintf("%08d", i) {
			fail("answer %d: %d bytes beginning %q", i, len(m), m[:min(len(m), 8)])
			continue
		}
		res.Replies[v]++
		res.Sample = v + "|" + m[:8]
		if i%5 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := stream.Receive(new(wrapperspb.StringValue)); !errors.Is(err, io.EOF) {
		fail("after the answers: %v, want the end of the stream", err)
	}
	if err := <-sent; err != nil {
		fail("%v", err)
	}
	_ = stream.CloseResponse()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// newConsumer returns a dubbo-go Triple client of its own instance.
func newConsumer() (*client.Client, error) {
	ins, err := dubbo.NewInstance(dubbo.WithName("metamesh-triple-consumer"), dubbo.WithLogger(dubbolog.WithLevel("warn")),
		dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()))
	if err != nil {
		return nil, err
	}
	gostlog.SetLoggerLevel("warn")
	return ins.NewClient(client.WithClientProtocolTriple())
}
