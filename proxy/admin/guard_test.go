package admin

import (
	"net"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// A browser page can't change the log level: cross-origin requests and
// requests naming the admin by a (rebindable) host name get 403 and change
// nothing; curl and same-origin requests still work, and reads are open.
func TestStateChangesRefuseBrowsersOfOtherSites(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		headers []string
		want    int
	}{
		{"curl", "POST", nil, 200},
		{"curl by localhost", "PUT", []string{"Host", "localhost:15000"}, 200},
		{"curl by IPv6", "POST", []string{"Host", "[::1]:15000"}, 200},
		{"same origin", "POST", []string{"Origin", "http://127.0.0.1:15000", "Sec-Fetch-Site", "same-origin"}, 200},
		{"typed in the address bar", "POST", []string{"Sec-Fetch-Site", "none"}, 200},
		{"cross-site fetch", "POST", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, 403},
		{"same-site other port", "POST", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:8080"}, 403},
		{"old browser, foreign origin", "PUT", []string{"Origin", "https://evil.example"}, 403},
		{"DNS rebinding", "POST", []string{"Host", "evil.example:15000", "Origin", "http://evil.example:15000", "Sec-Fetch-Site", "same-origin"}, 403},
		{"cross-site read", "GET", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			level := zap.NewAtomicLevelAt(zap.InfoLevel)
			h := NewHandler(proxy.New(zaptest.NewLogger(t), metrics.NewProxy()), Options{Level: &level})
			url := "/logging?level=debug"
			code, body := get(t, h, tc.method, url, tc.headers...)
			if code != tc.want {
				t.Fatalf("%s %s = %d %q, want %d", tc.method, url, code, body, tc.want)
			}
			changed := level.Level() == zap.DebugLevel
			if wantChange := tc.want == 200 && tc.method != "GET"; changed != wantChange {
				t.Fatalf("level changed: %v, want %v", changed, wantChange)
			}
		})
	}
}

func TestExposed(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:15000", false},
		{"[::1]:15000", false},
		{"0.0.0.0:15000", true},
		{"[::]:15000", true},
		{"10.1.2.3:15000", true},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := Exposed(a); got != tc.want {
			t.Errorf("Exposed(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
