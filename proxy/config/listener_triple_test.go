package config_test

import (
	"testing"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	_ "github.com/metamesh/metamesh/protocols/triple" // registers "triple"
	"github.com/metamesh/metamesh/proxy/config"
)

// TestDubboListenerServesTriple: a dubbo listener has the Triple codec
// for the connections that open with the HTTP/2 preface, the one instance
// a triple listener would use (upstream pools are keyed by codec), kept
// across builds; listeners of other codecs have none.
func TestDubboListenerServesTriple(t *testing.T) {
	b := config.NewBuilder()
	s1 := build(t, b, load(t))
	l := s1.Listeners["dubbo_20880"]
	if l.Triple == nil {
		t.Fatal("dubbo listener without the Triple codec")
	}
	want, err := protocols.New(config.TripleCodec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Triple.Model(); got != want.Model() {
		t.Errorf("Triple codec model %s, want %s", got, want.Model())
	}
	if s2 := build(t, b, load(t)); s2.Listeners["dubbo_20880"].Triple != l.Triple {
		t.Error("Triple codec not reused by the next build")
	}

	res := load(t)
	editProxy(t, res, func(p *xdsapi.MetaProtocolProxy) { p.Codec, p.CodecConfig = config.TripleCodec, nil })
	if tl := build(t, b, res).Listeners["dubbo_20880"]; tl.Triple != nil || tl.Codec != l.Triple {
		t.Errorf("triple listener: Triple %v, codec %p; want none and the dubbo listener's Triple %p", tl.Triple, tl.Codec, l.Triple)
	}
}
