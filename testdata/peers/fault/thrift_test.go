package fault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	athrift "github.com/apache/thrift/lib/go/thrift"

	"github.com/metamesh/metamesh/protocols"
	pthrift "github.com/metamesh/metamesh/protocols/thrift"
	"github.com/metamesh/metamesh/testdata/peers/thrift"
	"github.com/metamesh/metamesh/testdata/peers/thrift/gen-go/echo"
)

var framedBinary = thrift.Combo{Transport: "framed", Protocol: "binary"}

// thriftReply is a framed binary REPLY to method with seqid seq whose
// success value is value, written with apache/thrift.
func thriftReply(t testing.TB, method string, seq int32, value string) []byte {
	ctx := context.Background()
	mem := athrift.NewTMemoryBuffer()
	p := athrift.NewTBinaryProtocolConf(mem, nil)
	res := echo.EchoEchoResult{Success: &value}
	if err := errors.Join(p.WriteMessageBegin(ctx, method, athrift.REPLY, seq), res.Write(ctx, p),
		p.WriteMessageEnd(ctx), p.Flush(ctx)); err != nil {
		t.Error(err)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(mem.Len())), mem.Bytes()...)
}

// thriftFaults decodes requests with the project's codec and answers
// echo(payload) with "bad|<payload>".
func thriftFaults(t testing.TB) *faultServer {
	codec, err := pthrift.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return startFaultServer(t, codec.Decode, func(m *protocols.Message) (reply, unknown, extra []byte) {
		method, _ := m.Headers.Get("method")
		if i := strings.IndexByte(method, ':'); i >= 0 {
			method = method[i+1:] // a multiplexed client expects the bare name back
		}
		value := "bad|" + string(payloadRE.Find(m.Raw))
		return thriftReply(t, method, int32(m.ID), value), thriftReply(t, method, int32(unknownID+m.ID), "bad|not-yours"), nil
	})
}

// judgeThrift: the proxy's errors are TApplicationExceptions whose message
// starts with "metamesh:".
func judgeThrift(got string, err error, want string) (outcome, string) {
	var ae athrift.TApplicationException
	switch {
	case err == nil && got == want:
		return own, ""
	case errors.As(err, &ae) && strings.HasPrefix(ae.Error(), "metamesh:"):
		return native, ""
	}
	return wrong, fmt.Sprintf("want %q: got %q, %v", want, got, err)
}

// TestThriftUpstreamFaults: real apache/thrift clients (framed, binary),
// one connection per caller and route for Echo (echo → the healthy
// server, ping → the one killed) and one multiplexed as service "Faulty" (→ the fault
// server); real apache/thrift servers.
func TestThriftUpstreamFaults(t *testing.T) {
	t.Parallel()
	good := thrift.StartServer(t, "v1", framedBinary)
	killed, stopKilled, err := thrift.Serve("v2", "127.0.0.1:0", framedBinary)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopKilled() })
	fs := thriftFaults(t)
	c := &config{Codec: "thrift", CodecConfig: "{onewayMethods: [fire]}", DefaultService: "Echo",
		Clusters: map[string]string{"good": good.Addr, "kill": killed.Addr, "bad": fs.addr()},
		Hosts: []vhost{
			{Name: "echo", Domains: "[Echo]", Routes: []route{
				{Name: "kill", Attr: "method", Exact: "ping", Cluster: "kill"},
				{Name: "good", Cluster: "good"},
			}},
			{Name: "faulty", Domains: "[Faulty]", Routes: []route{{Name: "bad", Cluster: "bad", Timeout: "0.3s"}}},
		}}
	srv := startProxy(t, c)
	const callers = 4
	// A thrift client is one call at a time: each path has its own.
	plain, killc, faulty := make([]*thrift.Client, callers), make([]*thrift.Client, callers), make([]*thrift.Client, callers)
	for g := range callers {
		plain[g], killc[g] = thrift.Dial(t, c.Listen, framedBinary), thrift.Dial(t, c.Listen, framedBinary)
		faulty[g] = thrift.DialMultiplexed(t, c.Listen, framedBinary, "Faulty")
	}
	ctx := context.Background()
	r := &rig{srv: srv, listener: "thrift", fs: fs, callers: callers,
		good: func(g, i int) (outcome, string) {
			name := fmt.Sprintf("fault-%d-%d", g, i)
			got, err := plain[g].Echo(ctx, name)
			return judgeThrift(got, err, "v1|"+name)
		},
		kill: func(g, i int) (outcome, string) {
			name := fmt.Sprintf("fault-%d-%d", g, i)
			got, err := killc[g].Ping(ctx, name)
			return judgeThrift(got, err, "v2|"+name)
		},
		bad: func(g, i int) (outcome, string) {
			name := fmt.Sprintf("fault-%d-%d", g, i)
			got, err := faulty[g].Echo(ctx, name)
			return judgeThrift(got, err, "bad|"+name)
		},
		modes:        []mode{modeSilent, modeGarbage, modeHalf, modeUnknownID},
		killUpstream: func() { stopKilled() },
		restartUpstream: func() {
			var err error
			if _, stopKilled, err = thrift.Serve("v2", killed.Addr, framedBinary); err != nil {
				t.Error(err)
			}
		},
	}
	r.run(t)
}
