package wire_test

import (
	"bufio"
	"fmt"
	"sync"
	"testing"

	"github.com/metamesh/metamesh/proxy/wire"
)

// Many producers appending at once over TCP: every frame arrives whole,
// and each producer's frames arrive in the order it appended them. This
// exercises the hand-over between inline writes and the flusher.
func TestWriterConcurrentProducersKeepOrder(t *testing.T) {
	client, server := tcpPair(t)
	defer server.Close()

	const producers, frames = 8, 5000
	w := wire.NewWriter(client, 0)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range frames {
				if err := w.Append(func(dst []byte) []byte { return fmt.Appendf(dst, "%d:%d:%0100d\n", p, i, i) }); err != nil {
					t.Errorf("producer %d frame %d: %v", p, i, err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); w.Close(); close(done) }()

	next := make([]int, producers)
	sc := bufio.NewScanner(server)
	total := 0
	for sc.Scan() {
		var p, i, pad int
		if _, err := fmt.Sscanf(sc.Text(), "%d:%d:%d", &p, &i, &pad); err != nil || p < 0 || p >= producers || pad != i {
			t.Fatalf("torn frame %q: %v", sc.Text(), err)
		}
		if i != next[p] {
			t.Fatalf("producer %d: frame %d arrived, want %d", p, i, next[p])
		}
		next[p]++
		total++
	}
	<-done
	if total != producers*frames {
		t.Fatalf("%d frames arrived, want %d", total, producers*frames)
	}
}
