package lprpc_test

import (
	"testing"

	"github.com/metamesh/metamesh/protocols/codectest"
)

// FuzzDecode checks the kit's invariants on any input: no panic, lengths
// in bounds, decoded frames re-encode and decode again the same.
func FuzzDecode(f *testing.F) {
	reqs, resps := samples()
	var seeds [][]byte
	for _, fr := range append(reqs, resps...) {
		seeds = append(seeds, fr.Bytes)
	}
	codectest.Fuzz(f, newCodec, seeds...)
}
