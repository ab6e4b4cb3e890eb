package upstream_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
)

// A connection whose writer failed but whose read loop has not seen the
// close yet is still in the pool: a send that meets it goes out on a new
// connection instead of failing (nothing of it was sent).
func TestSendSkipsConnectionThatDied(t *testing.T) {
	for _, model := range models {
		t.Run(fmt.Sprint(model), func(t *testing.T) {
			srv := newServer(t, nil)
			pool, _ := newPool(t, srv.addr(), model, 1)
			rcv := newRecorder()
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, "first")); err != nil {
				t.Fatal(err)
			}
			rcv.wait(t, 1)
			upstream.BreakWriters(pool, errors.New("write: broken pipe"))
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 2, "second")); err != nil {
				t.Fatalf("send after the connection's writer failed: %v", err)
			}
			if e := rcv.wait(t, 1)[0]; !e.respond || e.payload != "second" {
				t.Fatalf("second call: respond=%v payload %q err %v", e.respond, e.payload, e.err)
			}
		})
	}
}
