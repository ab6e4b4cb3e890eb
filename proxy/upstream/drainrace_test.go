package upstream_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
)

// A Send racing a Drain either goes out or fails with ErrPoolClosed
// (nothing sent: the proxy asks the Manager again), never with the closed
// connection's own error, which the proxy would answer as a failure. The
// fault suite's TestConfigChurn saw "upstream: connection closed" replies
// when a config change removed an endpoint: the connection was taken just
// before the drain closed it idle. The window is a few instructions wide:
// this loop rarely hits it (TestConfigChurn does, about once in 30k calls),
// so it guards the outcome rather than proving the race each run.
func TestSendRacingDrain(t *testing.T) {
	for _, model := range []protocols.Model{protocols.Multiplexed, protocols.Pipelined} {
		t.Run(model.String(), func(t *testing.T) {
			srv := newServer(t, nil)
			rcv := newRecorder()
			for round := range 500 {
				pool, _ := newPool(t, srv.addr(), model, 1)
				if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, "warm")); err != nil {
					t.Fatal(err)
				}
				rcv.wait(t, 1)
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for g := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c := newCall(rcv, protocols.KindRequest, uint64(2+g), "racing")
						c.Affinity = uint64(g)
						if err := sendNow(pool, c); err != nil {
							errs <- err
						}
					}()
				}
				pool.Drain()
				wg.Wait()
				close(errs)
				sent := 8
				for err := range errs {
					sent--
					if !errors.Is(err, upstream.ErrPoolClosed) {
						t.Fatalf("round %d: Send racing Drain: %v, want ErrPoolClosed", round, err)
					}
				}
				rcv.wait(t, sent)
			}
		})
	}
}
