package dubboclient_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.CleanupBuilds()
	os.Exit(code)
}

// TestSmoke calls a real greeter-server directly.
func TestSmoke(t *testing.T) {
	g := harness.StartGreeter(t, "v1")
	c, err := dubboclient.New(g.Addr, dubboclient.DefaultInterface)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if got, err := c.SayHello(ctx, "world"); err != nil || got != "v1|world" {
		t.Errorf("SayHello = %q, %v; want v1|world", got, err)
	}
	actx := dubboclient.WithAttachments(ctx, map[string]string{"batchjob": "true", "tenant": "acme"})
	actx = dubboclient.WithAttachments(actx, map[string]string{"x-request-id": "r1"})
	for key, want := range map[string]string{"batchjob": "v1|true", "tenant": "v1|acme", "x-request-id": "v1|r1", "missing": "v1|"} {
		if got, err := c.Attachment(actx, key); err != nil || got != want {
			t.Errorf("Attachment(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	if got, err := c.Attachment(ctx, "batchjob"); err != nil || got != "v1|" {
		t.Errorf("Attachment without attachments = %q, %v; want v1|", got, err)
	}
	if got, err := c.Sleep(ctx, 1); err != nil || got != "v1|slept" {
		t.Errorf("Sleep = %q, %v", got, err)
	}
	if err := c.SayHelloOneway(ctx, "oneway"); err != nil {
		t.Errorf("SayHelloOneway: %v", err)
	}

	// a status-20 exception from the provider surfaces as the bare message
	_, err = c.Call(ctx, "NoSuchMethod", "x")
	if err == nil || !strings.Contains(err.Error(), "cannot find method [NoSuchMethod]") {
		t.Errorf("unknown method: err = %v", err)
	}

	// the call's timeout comes from the context deadline
	tctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	_, err = c.Sleep(tctx, 2000)
	cancel()
	if !dubboclient.IsTimeout(err) {
		t.Errorf("Sleep past deadline: err = %v, want a timeout", err)
	}

	c.Close()
	if _, err := c.SayHello(ctx, "x"); !errors.Is(err, dubboclient.ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
}

// TestConcurrentCallers has 64 goroutines share one Client; each must get
// its own payload and attachment back.
func TestConcurrentCallers(t *testing.T) {
	g := harness.StartGreeter(t, "v2")
	c, err := dubboclient.NewWithOptions(g.Addr, "", dubboclient.Options{Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const callers, calls = 64, 10
	var wg sync.WaitGroup
	errs := make(chan error, callers*calls)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < calls; j++ {
				name := fmt.Sprintf("caller-%d-%d", i, j)
				ctx := dubboclient.WithAttachments(context.Background(), map[string]string{"who": name})
				if got, err := c.SayHello(ctx, name); err != nil || got != "v2|"+name {
					errs <- fmt.Errorf("SayHello(%s) = %q, %v", name, got, err)
				}
				if got, err := c.Attachment(ctx, "who"); err != nil || got != "v2|"+name {
					errs <- fmt.Errorf("Attachment(who) for %s = %q, %v", name, got, err)
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if n > 5 {
		t.Errorf("... %d errors in all", n)
	}
}

// TestUpstreamKilled: calls fail (not hang) once the provider is SIGKILLed.
func TestUpstreamKilled(t *testing.T) {
	g := harness.StartGreeter(t, "v1")
	c, err := dubboclient.NewWithOptions(g.Addr, "", dubboclient.Options{Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.SayHello(context.Background(), "before"); err != nil {
		t.Fatal(err)
	}
	g.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if got, err := c.SayHello(ctx, "after"); err == nil {
		t.Errorf("SayHello after kill = %q, want an error", got)
	}
}

// TestNonOKStatusSurfaces pins how a dubbo-go consumer reports a response
// with a non-20 status (what metamesh's local error replies send): the
// error text is "java exception:" + the hessian2 string body.
func TestNonOKStatusSurfaces(t *testing.T) {
	str := func(s string) func() []byte {
		return func() []byte { e := hessian.NewEncoder(); _ = e.Encode(s); return e.Buffer() }
	}
	for _, tc := range []struct {
		name    string
		status  byte
		body    func() []byte
		want    string
		timeout bool
	}{
		{"status 60", 60, str("no route for org.example.Missing"), "java exception:no route for org.example.Missing", false},
		{"status 80", 80, str("upstream overloaded"), "java exception:upstream overloaded", false},
		{"status 31 empty", 31, str(""), "java exception:", false},
		// a non-string body panics inside dubbo-go's decoder; the session
		// is dropped and the caller only sees its timeout
		{"status 60 null body", 60, func() []byte { return []byte{'N'} }, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeProvider(t, tc.status, tc.body())
			c, err := dubboclient.NewWithOptions(addr, "", dubboclient.Options{Connections: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err = c.SayHello(ctx, "x")
			switch {
			case err == nil:
				t.Fatal("no error")
			case tc.timeout:
				if !dubboclient.IsTimeout(err) {
					t.Errorf("err = %q, want a timeout", err)
				}
			case err.Error() != tc.want:
				t.Errorf("err.Error() = %q, want %q", err, tc.want)
			}
		})
	}
}

// fakeProvider answers every two-way request with a response frame of the
// given status (hessian2 serialization) and body; heartbeats are ignored.
func fakeProvider(t *testing.T, status byte, body []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				hdr := make([]byte, 16)
				for {
					if _, err := io.ReadFull(c, hdr); err != nil {
						return
					}
					if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[12:]))); err != nil {
						return
					}
					if hdr[2]&0x20 != 0 || hdr[2]&0x40 == 0 { // event or oneway
						continue
					}
					out := make([]byte, 16, 16+len(body))
					out[0], out[1], out[2], out[3] = 0xda, 0xbb, 0x02, status
					copy(out[4:12], hdr[4:12])
					binary.BigEndian.PutUint32(out[12:], uint32(len(body)))
					if _, err := c.Write(append(out, body...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
