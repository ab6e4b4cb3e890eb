package redis

import (
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// TestResetAgainstServer: on a real redis-server, Reset's requests end
// what a client left on a connection (an open MULTI with a queued
// command, a WATCH, another database, a name), their replies are the
// ones ResetReplyOK accepts, and the connection is authenticated again.
func TestResetAgainstServer(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		server    []string
		replies   int
	}{
		{"no upstream password", "", nil, 1},
		{"upstream password", `{"upstreamPassword": "s3cret"}`, []string{"--requirepass", "s3cret"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := startServer(t, tc.server...).dial()
			codec := newCodec(t, tc.cfg)
			if hs, n := codec.Handshake(nil); n > 0 {
				if _, frame := cl.do(hs); string(frame) != "+OK\r\n" {
					t.Fatalf("handshake: %q", frame)
				}
			}
			for _, step := range []struct{ req, reply string }{
				{"SET k0 kept", "+OK"},
				{"SELECT 1", "+OK"},
				{"SET k1 db1", "+OK"},
				{"CLIENT SETNAME left", "+OK"},
				{"WATCH k0", "+OK"},
				{"MULTI", "+OK"},
				{"SET leaked yes", "+QUEUED"},
			} {
				if _, frame := cl.do(mb(strings.Fields(step.req)...)); string(frame) != step.reply+"\r\n" {
					t.Fatalf("%s: %q, want %s", step.req, frame, step.reply)
				}
			}
			frames, n := codec.Reset(nil)
			if n != tc.replies {
				t.Fatalf("Reset says %d replies, want %d", n, tc.replies)
			}
			if _, err := cl.nc.Write(frames); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if m, frame := cl.read(); !codec.ResetReplyOK(i, &m) {
					t.Fatalf("reset reply %d %q refused", i, frame)
				}
			}
			for _, step := range []struct{ req, reply string }{
				{"EXEC", "-ERR EXEC without MULTI"},
				{"GET leaked", "$-1"},
				{"GET k0", "$4\r\nkept"}, // database 0, authenticated
				{"GET k1", "$-1"},
				{"CLIENT GETNAME", "$-1"},
			} {
				if _, frame := cl.do(mb(strings.Fields(step.req)...)); string(frame) != step.reply+"\r\n" {
					t.Fatalf("after the reset, %s: %q, want %s", step.req, frame, step.reply)
				}
			}
		})
	}
}

// TestResetReplyOK: only +RESET answers RESET and only +OK the AUTH after
// it; a server without RESET (before 6.2) or a refused AUTH fails.
func TestResetReplyOK(t *testing.T) {
	codec := newCodec(t, `{"upstreamPassword": "pw"}`)
	for _, tc := range []struct {
		i     int
		reply string
		ok    bool
	}{
		{0, "+RESET\r\n", true},
		{0, "+OK\r\n", false},
		{0, "-ERR unknown command 'RESET', with args beginning with: \r\n", false},
		{1, "+OK\r\n", true},
		{1, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", false},
		{1, "+RESET\r\n", false},
	} {
		var m protocols.Message
		if _, err := codec.DecodeResponse([]byte(tc.reply), &m); err != nil {
			t.Fatal(err)
		}
		if got := codec.ResetReplyOK(tc.i, &m); got != tc.ok {
			t.Errorf("ResetReplyOK(%d, %q) = %v, want %v", tc.i, tc.reply, got, tc.ok)
		}
	}
}
