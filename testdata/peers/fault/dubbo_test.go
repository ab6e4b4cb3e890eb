package fault

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

const iface = dubboclient.DefaultInterface

// A fault route's calls carry their payload, "fault-<caller>-<call>";
// the fault servers answer "bad|<payload>".
var payloadRE = regexp.MustCompile(`fault-\d+-\d+`)

// unknownID is an ID the proxy never gives a request in these tests (it
// counts up from 1 on each upstream connection).
const unknownID = 0x7fff0000

// dubboFaults decodes requests with the project's codec and answers
// SayHello(payload) with "bad|<payload>".
func dubboFaults(t testing.TB) *faultServer {
	codec, err := dubbo.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return startFaultServer(t, codec.Decode, func(m *protocols.Message) (reply, unknown, extra []byte) {
		if m.Kind == protocols.KindHeartbeat {
			return codec.HeartbeatReply(nil, m), nil, nil
		}
		value := "bad|" + string(payloadRE.Find(m.Raw))
		return dubbo.AppendResponse(nil, m.ID, dubbo.StatusOK, value),
			dubbo.AppendResponse(nil, unknownID+m.ID, dubbo.StatusOK, "bad|not-yours"), nil
	})
}

// judgeDubbo: dubbo-go surfaces a non-OK status as "java exception:<text>"
// (see package dubboclient), and every error the proxy makes starts with
// "metamesh:".
func judgeDubbo(got string, err error, want string) (outcome, string) {
	switch {
	case err == nil && got == want:
		return own, ""
	case err != nil && strings.HasPrefix(err.Error(), "java exception:metamesh:"):
		return native, ""
	}
	return wrong, fmt.Sprintf("want %q: got %q, %v", want, got, err)
}

// TestDubboUpstreamFaults: a real dubbo-go consumer, one connection pool
// for all three routes (the route is chosen by the "fault" attachment),
// real greeter-server providers for the healthy and the killed route.
func TestDubboUpstreamFaults(t *testing.T) {
	t.Parallel()
	good, killed := harness.StartGreeter(t, "v1"), harness.StartGreeter(t, "v2")
	fs := dubboFaults(t)
	c := &config{Codec: "dubbo", Clusters: map[string]string{"good": good.Addr, "kill": killed.Addr, "bad": fs.addr()},
		Hosts: []vhost{{Name: "greetings", Domains: "[" + iface + "]", Routes: []route{
			{Name: "bad", Attr: "fault", Exact: "bad", Cluster: "bad", Timeout: "0.3s"},
			{Name: "kill", Attr: "fault", Exact: "kill", Cluster: "kill"},
			{Name: "good", Cluster: "good"},
		}}}}
	srv := startProxy(t, c)
	cl, err := dubboclient.NewWithOptions(c.Listen, iface, dubboclient.Options{Timeout: 5 * time.Second, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })

	via := func(route, version string) call {
		ctx := dubboclient.WithAttachments(context.Background(), map[string]string{"fault": route})
		return func(g, i int) (outcome, string) {
			name := fmt.Sprintf("fault-%d-%d", g, i)
			got, err := cl.SayHello(ctx, name)
			return judgeDubbo(got, err, version+"|"+name)
		}
	}
	r := &rig{srv: srv, listener: "dubbo", fs: fs, callers: 4,
		good: via("none", "v1"), kill: via("kill", "v2"), bad: via("bad", "bad"),
		modes:        []mode{modeSilent, modeGarbage, modeHalf, modeUnknownID},
		killUpstream: func() { killed.Kill() }, // the greeter running now (restart replaces it)
		restartUpstream: func() {
			killed = harness.StartGreeterWith(t, harness.GreeterOptions{Version: "v2", Addr: killed.Addr})
		},
	}
	r.run(t)
}
