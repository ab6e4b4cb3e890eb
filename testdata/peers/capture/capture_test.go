package capture_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	hessian "github.com/apache/dubbo-go-hessian2"

	"github.com/metamesh/metamesh/testdata/peers/capture"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

var (
	doCapture = flag.Bool("capture", false, "record real dubbo-go frames into -capture.dir")
	outDir    = flag.String("capture.dir", "../../../protocols/dubbo/testdata/captured", "where -capture writes the frames and CAPTURED.md")
)

const regenerate = "cd testdata/peers && go test ./capture -run TestCapture -count=1 -v -capture"

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	harness.CleanupBuilds()
	os.Exit(code)
}

// LongString is the argument of request-long-string.bin: exactly 40,000
// characters (runes) mixing ASCII, 2- and 3-byte UTF-8 and a 4-byte emoji
// (a surrogate pair in Java's UTF-16, which hessian2 lengths count).
func LongString() string {
	const motif = "metamesh-ünïcødé-日本語-😀|"
	var b strings.Builder
	for utf8.RuneCountInString(b.String()) < 40000 {
		b.WriteString(motif)
	}
	r := []rune(b.String())[:40000]
	return string(r)
}

type captured struct {
	name  string
	what  string
	frame capture.Frame
}

// TestRelayFrames checks the relay with real peers (always runs, fast).
func TestRelayFrames(t *testing.T) {
	g := harness.StartGreeter(t, "v1")
	relay, err := capture.NewRelay(g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	c, err := dubboclient.NewWithOptions(relay.Addr(), dubboclient.DefaultInterface, dubboclient.Options{Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.SayHello(context.Background(), "relay")
	if err != nil || got != "v1|relay" {
		t.Fatalf("SayHello via relay = %q, %v", got, err)
	}
	req, err := relay.WaitFor(0, 5*time.Second, func(f capture.Frame) bool {
		return f.Dir == capture.ToProvider && f.IsRequest() && !f.IsEvent()
	})
	if err != nil {
		t.Fatal(err)
	}
	if !req.IsTwoWay() || req.Serialization() != 2 || req.BodyLen() != len(req.Body()) {
		t.Errorf("request frame: %s", req.Describe())
	}
	resp, err := relay.WaitFor(0, 5*time.Second, func(f capture.Frame) bool {
		return f.Dir == capture.ToConsumer && !f.IsRequest() && f.ID() == req.ID()
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status() != capture.StatusOK {
		t.Errorf("response frame: %s", resp.Describe())
	}
	if errs := relay.Errors(); len(errs) > 0 {
		t.Errorf("relay errors: %v", errs)
	}
}

// TestCapture regenerates protocols/dubbo/testdata/captured. It is skipped
// unless -capture is given.
func TestCapture(t *testing.T) {
	if !*doCapture {
		t.Skip("regenerate with: " + regenerate)
	}
	g := harness.StartGreeterWith(t, harness.GreeterOptions{Version: "v1", HeartbeatPeriod: 2 * time.Second})
	relay, err := capture.NewRelay(g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	// One connection, so every frame of the session is on relay conn 0, and
	// a short consumer heartbeat period.
	c, err := dubboclient.NewWithOptions(relay.Addr(), dubboclient.DefaultInterface,
		dubboclient.Options{Connections: 1, HeartbeatPeriod: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var out []captured

	exchange := func(name, what string, wantErr bool, call func() (string, error)) {
		t.Helper()
		from := relay.Len()
		got, err := call()
		if (err != nil) != wantErr {
			t.Fatalf("%s: got %q, err %v", name, got, err)
		}
		t.Logf("%s: %.60q err=%v", name, got, err)
		req, err := relay.WaitFor(from, 5*time.Second, func(f capture.Frame) bool {
			return f.Dir == capture.ToProvider && f.IsRequest() && !f.IsEvent()
		})
		if err != nil {
			t.Fatalf("%s: request: %v", name, err)
		}
		resp, err := relay.WaitFor(from, 5*time.Second, func(f capture.Frame) bool {
			return f.Dir == capture.ToConsumer && !f.IsRequest() && !f.IsEvent() && f.ID() == req.ID()
		})
		if err != nil {
			t.Fatalf("%s: response: %v", name, err)
		}
		respName := "response-" + name
		if wantErr {
			respName = "response-exception-" + name
		}
		out = append(out,
			captured{"request-" + name + ".bin", what, req},
			captured{respName + ".bin", "the provider's reply to request-" + name + ".bin", resp})
	}

	exchange("sayhello", `SayHello("world") → "v1|world"`, false, func() (string, error) {
		return c.SayHello(ctx, "world")
	})
	atts := map[string]string{"batchjob": "true", "tenant": "acme", "x-request-id": "req-0001"}
	exchange("sayhello-attachments", `SayHello("batch") with attachments batchjob=true, tenant=acme, x-request-id=req-0001`, false, func() (string, error) {
		return c.SayHello(dubboclient.WithAttachments(ctx, atts), "batch")
	})
	exchange("attachment", `Attachment("batchjob") with attachment batchjob=true → "v1|true"`, false, func() (string, error) {
		return c.Attachment(dubboclient.WithAttachments(ctx, map[string]string{"batchjob": "true"}), "batchjob")
	})
	exchange("sleep", `Sleep(int32 5) → "v1|slept" (an int argument)`, false, func() (string, error) {
		return c.Sleep(ctx, 5)
	})
	long := LongString()
	exchange("long-string", `SayHello(s) with s of 40,000 characters (`+fmt.Sprint(len(long))+` UTF-8 bytes) repeating "metamesh-ünïcødé-日本語-😀|" (2-, 3- and 4-byte UTF-8); the reply echoes "v1|"+s`, false, func() (string, error) {
		got, err := c.SayHello(ctx, long)
		if err == nil && got != "v1|"+long {
			return got, fmt.Errorf("long string did not round-trip")
		}
		return got, err
	})
	exchange("unknown-method", `Call("NoSuchMethod", "x"): a method the provider does not have; dubbo-go answers status 20 with an exception body`, true, func() (string, error) {
		return c.Call(ctx, "NoSuchMethod", "x")
	})
	other, err := dubboclient.NewWithOptions(relay.Addr(), "org.apache.dubbo.samples.api.NoSuchService", dubboclient.Options{Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	exchange("unknown-interface", `SayHello("x") on interface org.apache.dubbo.samples.api.NoSuchService, which the provider does not export; status 20 with an exception body`, true, func() (string, error) {
		return other.SayHello(ctx, "x")
	})
	other.Close()

	// oneway
	from := relay.Len()
	if err := c.SayHelloOneway(ctx, "fire-and-forget"); err != nil {
		t.Fatal(err)
	}
	ow, err := relay.WaitFor(from, 5*time.Second, func(f capture.Frame) bool {
		return f.Dir == capture.ToProvider && f.IsRequest() && !f.IsTwoWay() && !f.IsEvent()
	})
	if err != nil {
		t.Fatalf("oneway: %v", err)
	}
	out = append(out, captured{"oneway-sayhello.bin", `SayHello("fire-and-forget") sent oneway (dubbo-go: "async"="true" attachment, no callback); the provider sends no reply`, ow})

	// heartbeats, both ways
	heartbeat := func(dir capture.Direction, reqName, replyName, who, peer string) {
		t.Helper()
		hb, err := relay.WaitFor(0, 15*time.Second, func(f capture.Frame) bool {
			return f.Dir == dir && f.IsRequest() && f.IsEvent()
		})
		if err != nil {
			t.Fatalf("%s heartbeat: %v", who, err)
		}
		back := capture.ToConsumer
		if dir == capture.ToConsumer {
			back = capture.ToProvider
		}
		reply, err := relay.WaitFor(hb.Seq, 10*time.Second, func(f capture.Frame) bool {
			return f.Dir == back && !f.IsRequest() && f.IsEvent() && f.ID() == hb.ID()
		})
		if err != nil {
			t.Fatalf("%s heartbeat reply: %v", who, err)
		}
		out = append(out,
			captured{reqName, "heartbeat (event request) sent by the " + who + " on its own timer", hb},
			captured{replyName, "the " + peer + "'s heartbeat reply (event response) to " + reqName, reply})
	}
	heartbeat(capture.ToProvider, "heartbeat-consumer.bin", "heartbeat_reply-provider.bin", "dubbo-go consumer (heartbeat-period 1s)", "provider")
	heartbeat(capture.ToConsumer, "heartbeat-provider.bin", "heartbeat_reply-consumer.bin", "dubbo-go provider (greeter-server --heartbeat-period 2s)", "consumer")

	if errs := relay.Errors(); len(errs) > 0 {
		t.Fatalf("relay errors: %v", errs)
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(*outDir, "*.bin"))
	for _, f := range old {
		os.Remove(f)
	}
	for _, cf := range out {
		if err := os.WriteFile(filepath.Join(*outDir, cf.name), cf.frame.Bytes, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(*outDir, "CAPTURED.md"), []byte(manifest(out)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d frames to %s", len(out), *outDir)
}

func manifest(out []captured) string {
	var b strings.Builder
	b.WriteString(`# Captured Dubbo frames

Real frames exchanged by a dubbo-go v3.3.0 consumer (testdata/peers/dubboclient)
and a dubbo-go v3.3.0 provider (testdata/peers/cmd/greeter-server, version label
"v1", interface org.apache.dubbo.samples.api.GreetingsService) on the ` + "`dubbo`" + `
protocol with hessian2 over loopback. A TCP relay between them
(testdata/peers/capture) recorded each frame byte-exact as it crossed; each
file is one whole frame: the 16-byte header and the body.

Header: bytes 0-1 magic 0xdabb; byte 2 flags (0x80 request, 0x40 two-way,
0x20 event, low 5 bits serialization id, 2 = hessian2); byte 3 status
(responses, 20 = OK); bytes 4-11 request id (int64, big-endian); bytes 12-15
body length (int32, big-endian).

Regenerate (request ids, attachment order and timestamps change from run to
run; everything else is stable):

    ` + regenerate + `

## Notes

- dubbo-go never sends a non-20 status: its provider answers an unknown
  method or interface, or a method returning an error, with status 20 and a
  RESPONSE_WITH_EXCEPTION body (files response-exception-*.bin). There is
  therefore no error-*.bin here; a non-20 frame would have to be written by
  hand (see TestNonOKStatusSurfaces in testdata/peers/dubboclient for how the
  dubbo-go consumer reacts to one).
- A request's body is: dubbo version ("2.0.2"), path, service version,
  method, parameter-types descriptor ("Ljava/lang/String;", "I"), the
  arguments, then the attachment map (hessian2 untyped map 'H' … 'Z'). The
  dubbo-go consumer always sends the attachments path, interface, version
  (""), timeout (milliseconds, "3000") and retries (""), plus async=true for
  oneway; attachment order follows Go map iteration and changes per run.
- A response's body is the response type (int 4 RESPONSE_VALUE_WITH_ATTACHMENTS,
  3 RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS, 0 RESPONSE_WITH_EXCEPTION), the
  value or exception, then (types 3-5) the attachment map: the dubbo-go
  provider echoes the request's attachments and adds dubbo, local-addr and
  remote-addr. dubbo-go appends one extra hessian2 null ('N') to every
  response body it writes, heartbeat replies included
  (protocol/dubbo/impl/hessian.go:113-115); the body length covers it.
- Heartbeat requests are event frames (flag 0xe2) whose body is one
  hessian2 null ('N'); dubbo-go's heartbeat replies (flag 0x22, status 20)
  have the body 'N' 'N'. Both the consumer and the provider send heartbeats.
- Request ids: the consumer and the provider number their requests
  (heartbeats included) from independent counters, so an id alone does not
  identify an exchange on a connection; the direction does.

## Files

| file | bytes | header | produced by | body (hessian2, decoded) |
| --- | --- | --- | --- | --- |
`)
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	for _, cf := range out {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", cf.name, len(cf.frame.Bytes), cf.frame.Describe(), cf.what, decodeBody(cf.frame))
	}
	return b.String()
}

// decodeBody renders the hessian2 values in a frame's body for the manifest.
func decodeBody(f capture.Frame) string {
	if f.IsEvent() {
		return "`N` (null)"
	}
	d := hessian.NewDecoder(f.Body())
	var parts []string
	for i := 0; i < 16; i++ {
		v, err := d.Decode()
		if err != nil {
			if !strings.Contains(err.Error(), "EOF") {
				parts = append(parts, "decode error: "+err.Error())
			}
			break
		}
		parts = append(parts, render(v))
	}
	return strings.ReplaceAll(strings.Join(parts, "; "), "|", `\|`)
}

func render(v interface{}) string {
	switch x := v.(type) {
	case string:
		if utf8.RuneCountInString(x) > 40 {
			return fmt.Sprintf("string(%d chars) %q…", utf8.RuneCountInString(x), string([]rune(x)[:24]))
		}
		return fmt.Sprintf("%q", x)
	case map[interface{}]interface{}:
		keys := make([]string, 0, len(x))
		for k, val := range x {
			keys = append(keys, fmt.Sprintf("%v=%s", k, render(val)))
		}
		sort.Strings(keys)
		return "{" + strings.Join(keys, ", ") + "}"
	case nil:
		return "null"
	case error:
		return fmt.Sprintf("exception %T %q", x, x.Error())
	default:
		return fmt.Sprintf("%T %v", x, x)
	}
}
