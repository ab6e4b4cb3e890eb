package redis

import (
	"strings"
	"testing"
)

func TestHandshakeConfig(t *testing.T) {
	for cfg, want := range map[string]string{
		``:                           "",
		`{"upstreamPassword": "pw"}`: "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n",
		`{"upstreamPassword": "pw", "upstreamUsername": "u"}`: "*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$2\r\npw\r\n",
	} {
		c, err := New([]byte(cfg))
		if err != nil {
			t.Fatalf("%s: %v", cfg, err)
		}
		got, n := c.(*Codec).Handshake(nil)
		if string(got) != want || (n == 1) != (want != "") {
			t.Errorf("%s: Handshake = %q, %d; want %q", cfg, got, n, want)
		}
	}
	for _, bad := range []string{`{"upstreamPassword": ""}`, `{"upstreamUsername": "u"}`} {
		if _, err := New([]byte(bad)); err == nil || !strings.Contains(err.Error(), "upstream") {
			t.Errorf("%s: %v, want an error naming the upstream field", bad, err)
		}
	}
}
