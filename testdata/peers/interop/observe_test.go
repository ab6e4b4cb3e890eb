package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
	"github.com/metamesh/metamesh/testdata/peers/thrift"
)

// otlpReceiver is an in-process OTLP/gRPC trace collector.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (r *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// withParent returns the spans whose parent is the span parent (hex).
func (r *otlpReceiver) withParent(parent string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetParentSpanId()) == parent {
			out = append(out, s)
		}
	}
	return out
}

var observeConfig = `apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greetings}
spec:
  hosts: [%[1]s]
  ports: [{number: %[2]s, name: dubbo, protocol: dubbo}]
  endpoints: [{address: 127.0.0.1, ports: {dubbo: %[3]s}}]
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: echo}
spec:
  hosts: [echo.thrift]
  ports: [{number: %[4]s, name: thrift, protocol: thrift}]
  endpoints: [{address: 127.0.0.1, ports: {thrift: %[5]s}}]
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache}
spec:
  hosts: [cache.redis]
  ports: [{number: %[6]s, name: redis, protocol: redis}]
  endpoints: [{address: 127.0.0.1, ports: {redis: %[7]s}}]
`

// TestObservability drives real Dubbo, Thrift and Redis traffic through a
// `metamesh run` process with access logs and tracing on, then checks the
// metrics it exports, its access log lines, the spans it sends (children
// of the clients' traceparent) and the version in /config_dump.
func TestObservability(t *testing.T) {
	bin := harness.BuildMetamesh(t)
	greeter := harness.StartGreeter(t, "v1")
	combo := thrift.Combo{Transport: "header", Protocol: "binary"}
	echo := thrift.StartServer(t, "v1", combo)
	cache := redispeer.Start(t)

	rcv := &otlpReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, rcv)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	dubboAddr, thriftAddr, redisAddr := harness.FreeAddr(t), harness.FreeAddr(t), harness.FreeAddr(t)
	dir, admin := t.TempDir(), harness.FreeAddr(t)
	cfg := fmt.Sprintf(observeConfig, iface, portOf(dubboAddr), portOf(greeter.Addr), portOf(thriftAddr), portOf(echo.Addr), portOf(redisAddr), cache.Port())
	if err := os.WriteFile(filepath.Join(dir, "services.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	accessLog := filepath.Join(t.TempDir(), "access.log")
	startRun(t, bin, dir, admin, dubboAddr, &harness.SyncBuffer{},
		"--access-log", "all", "--access-log-path", accessLog,
		"--tracing-endpoint", ln.Addr().String(), "--tracing-insecure", "--tracing-sample", "0")
	ctx := context.Background()

	// Dubbo: 10 calls, one carrying a trace context.
	const traceID, dubboParent, thriftParent, redisParent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "00f067aa0ba902b8", "00f067aa0ba902b9"
	dc := newClient(t, dubboAddr, dubboclient.Options{})
	for i := range 9 {
		if _, err := dc.SayHello(ctx, payload(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	traced := dubboclient.WithAttachments(ctx, map[string]string{"traceparent": "00-" + traceID + "-" + dubboParent + "-01"})
	if _, err := dc.SayHello(traced, "traced"); err != nil {
		t.Fatal(err)
	}

	// Thrift: 10 calls over THeader, one with a trace context.
	tc := thrift.Dial(t, thriftAddr, combo)
	for i := range 9 {
		if _, err := tc.Echo(ctx, payload(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tc.Echo(thrift.WithHeader(ctx, "traceparent", "00-"+traceID+"-"+thriftParent+"-01"), "traced"); err != nil {
		t.Fatal(err)
	}

	// Redis: 10 SETs and a refused command (a local reply). Redis can't
	// carry a trace context: its span is a root one (not sampled at 0).
	rc := redis.NewClient(&redis.Options{Addr: redisAddr, Protocol: 2, MaxRetries: -1, PoolSize: 1, DisableIdentity: true})
	t.Cleanup(func() { _ = rc.Close() })
	for i := range 10 {
		if err := rc.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	sessionReplies := `metamesh_local_replies_total{protocol="redis",reason="session"}`
	before := seriesValue(get(t, admin, "/metrics"), sessionReplies) // the client's own setup commands
	if err := rc.Do(ctx, "KEYS", "*").Err(); err == nil || !strings.Contains(err.Error(), "metamesh") {
		t.Fatalf("KEYS: %v, want a metamesh refusal", err)
	}

	t.Run("metrics", func(t *testing.T) {
		m := get(t, admin, "/metrics")
		for series, want := range map[string]float64{
			`metamesh_requests_total{cluster="outbound|` + portOf(dubboAddr) + `||` + iface + `",protocol="dubbo",route="default",service="` + iface + `",status="ok"}`: 10,
			`metamesh_requests_total{cluster="outbound|` + portOf(thriftAddr) + `||echo.thrift",protocol="thrift",route="default",service="echo.thrift",status="ok"}`:   10,
			`metamesh_requests_total{cluster="outbound|` + portOf(redisAddr) + `||cache.redis",protocol="redis",route="default",service="cache.redis",status="ok"}`:     10,
			sessionReplies: before + 1,
		} {
			if got := seriesValue(m, series); got != want {
				t.Errorf("%s = %v, want %v", series, got, want)
			}
		}
		if seriesValue(m, `metamesh_request_duration_seconds_count{cluster="outbound|`+portOf(thriftAddr)+`||echo.thrift",protocol="thrift",route="default",service="echo.thrift"}`) != 10 {
			t.Errorf("the Thrift latency histogram did not count 10 requests")
		}
	})
	t.Run("access log", func(t *testing.T) {
		var lines []map[string]any
		waitFor(t, 5*time.Second, "30 access log lines", func() bool {
			lines = readLog(t, accessLog)
			return len(lines) >= 30
		})
		count := map[string]int{}
		for _, l := range lines {
			if l["status"] == "ok" {
				count[fmt.Sprint(l["protocol"])]++
			}
		}
		for _, p := range []string{"dubbo", "thrift", "redis"} {
			if count[p] != 10 {
				t.Errorf("%d ok access log lines for %s, want 10 (%v)", count[p], p, count)
			}
		}
	})
	t.Run("spans", func(t *testing.T) {
		for proto, parent := range map[string]string{"dubbo": dubboParent, "thrift": thriftParent} {
			waitFor(t, 10*time.Second, proto+"'s span", func() bool { return len(rcv.withParent(parent)) == 1 })
			sp := rcv.withParent(parent)[0]
			if hex.EncodeToString(sp.GetTraceId()) != traceID || !strings.HasPrefix(sp.GetName(), proto+" ") {
				t.Errorf("%s span %q in trace %x, want trace %s", proto, sp.GetName(), sp.GetTraceId(), traceID)
			}
		}
		if n := len(rcv.withParent(redisParent)); n != 0 {
			t.Errorf("%d spans with a parent Redis can't carry", n)
		}
	})
	t.Run("config dump version", func(t *testing.T) {
		var dump struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal([]byte(get(t, admin, "/config_dump")), &dump); err != nil || len(dump.Version) != 16 {
			t.Fatalf("config_dump version %q (%v), want a 16-digit content hash", dump.Version, err)
		}
	})
}

// seriesValue is the value of one exact series line, or -1.
func seriesValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

func readLog(t *testing.T, path string) []map[string]any {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("access log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}
