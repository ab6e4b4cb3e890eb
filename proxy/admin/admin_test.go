package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// get sends one request to h as curl on the proxy's machine would: to
// the default admin address, with no browser headers.
func get(t *testing.T, h http.Handler, method, url string, headers ...string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(method, url, nil)
	r.Host = "127.0.0.1:15000"
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			r.Host = headers[i+1]
			continue
		}
		r.Header.Set(headers[i], headers[i+1])
	}
	h.ServeHTTP(rec, r)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestLoggingLevel(t *testing.T) {
	level := zap.NewAtomicLevelAt(zap.InfoLevel)
	h := NewHandler(proxy.New(zaptest.NewLogger(t), metrics.NewProxy()), Options{Level: &level})
	if code, body := get(t, h, "GET", "/logging"); code != 200 || !strings.Contains(body, `"info"`) {
		t.Fatalf("GET /logging = %d %q", code, body)
	}
	if code, body := get(t, h, "POST", "/logging?level=debug"); code != 200 || !strings.Contains(body, `"debug"`) || level.Level() != zap.DebugLevel {
		t.Fatalf("POST /logging?level=debug = %d %q, level now %v", code, body, level.Level())
	}
	if code, _ := get(t, h, "PUT", "/logging?level=loud"); code != 400 || level.Level() != zap.DebugLevel {
		t.Fatalf("PUT /logging?level=loud = %d, level now %v; want 400 and no change", code, level.Level())
	}
	if code, _ := get(t, h, "DELETE", "/logging"); code != 405 {
		t.Fatalf("DELETE /logging = %d, want 405", code)
	}
}

func TestPprofBehindFlag(t *testing.T) {
	srv := proxy.New(zaptest.NewLogger(t), metrics.NewProxy())
	if code, _ := get(t, NewHandler(srv, Options{}), "GET", "/debug/pprof/"); code != 404 {
		t.Fatalf("pprof off: GET /debug/pprof/ = %d, want 404", code)
	}
	if code, body := get(t, NewHandler(srv, Options{Pprof: true}), "GET", "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof on: GET /debug/pprof/ = %d", code)
	}
}
