package lb_test

import (
	"strconv"
	"testing"

	"github.com/metamesh/metamesh/proxy/lb"
)

func BenchmarkLB(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	for _, policy := range policies {
		b.Run(policy, func(b *testing.B) {
			p := mustNew(b, policy, endpoints(1, 2, 3, 1, 1, 2, 3, 1))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if p.Pick(keys[i&1023], true) == nil {
					b.Fatal("nil host")
				}
				i++
			}
		})
	}
}

func BenchmarkLBBuild(b *testing.B) {
	eps := endpoints(1, 2, 3, 1, 1, 2, 3, 1)
	for _, policy := range policies {
		b.Run(policy, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := lb.New(policy, eps); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
