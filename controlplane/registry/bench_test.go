package registry

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/metamesh/metamesh/controlplane/translate"
)

// BenchmarkRegisterAtOnce is 10,000 providers of 2,000 interfaces
// registering at once, interface by interface as a ZooKeeper source
// reports them, until the one debounced push that carries them all. It
// fails if that takes more than one push.
func BenchmarkRegisterAtOnce(b *testing.B) {
	const ifaces, perIface = 2000, 5
	batches := make([][]Provider, ifaces)
	for i := range batches {
		for j := range perIface {
			batches[i] = append(batches[i], Provider{Address: fmt.Sprintf("10.%d.%d.%d", i/250, i%250, j), Port: 20880,
				Params: map[string]string{"version": "1.0.0", "application": "app", "side": "provider", "methods": "a,b,c"}})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		p := newPushes()
		sinkc := make(chan Sink, 1)
		m := &Mixer{Sources: []Source{funcSource{name: zk1, run: func(_ context.Context, s Sink) { sinkc <- s }}},
			Debounce: 100 * time.Millisecond, Publish: p.publish}
		_ = m.SetBase(&translate.Input{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		sink := <-sinkc
		for i, ps := range batches {
			sink.ReplaceInterface(zk1, fmt.Sprintf("com.example.Service%04d", i), ps)
		}
		<-p.ch // SetBase's
		<-p.ch // the registry's
		in, n := p.last()
		cancel()
		<-done
		if n != 2 || len(in.ServiceEntries) != ifaces {
			b.Fatalf("%d pushes, %d ServiceEntries; want 1 push after SetBase's with %d", n-1, len(in.ServiceEntries), ifaces)
		}
	}
	b.ReportMetric(1, "pushes/op")
}

// BenchmarkMerge is the merge of 10,000 providers of 2,000 interfaces
// into a config: the work of each push.
func BenchmarkMerge(b *testing.B) {
	var ps []Provider
	for i := range 2000 {
		for j := range 5 {
			ps = append(ps, Provider{Interface: fmt.Sprintf("com.example.Service%04d", i), Address: fmt.Sprintf("10.%d.%d.%d", i/250, i%250, j),
				Port: 20880, Registry: zk1, Params: map[string]string{"version": "1.0.0", "application": "app", "side": "provider", "methods": "a,b,c"}})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if out := Merge(&translate.Input{}, ps, nil); len(out.Input.ServiceEntries) != 2000 {
			b.Fatal(len(out.Input.ServiceEntries))
		}
	}
}
