package v1alpha1

import "testing"

func TestParseRateLimitService(t *testing.T) {
	for in, want := range map[string]RateLimitServiceRef{
		"outbound|8081||rate-limit-server.istio-system.svc.cluster.local": {Host: "rate-limit-server.istio-system.svc.cluster.local", Port: 8081},
		"outbound|8081|v1|rls":  {Host: "rls", Port: 8081, Subset: "v1"},
		"rls.example.com:65535": {Host: "rls.example.com", Port: 65535},
	} {
		if got, ok := ParseRateLimitService(in); !ok || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "rls", "rls:0", "rls:65536", "rls:80x", ":80", "outbound|8081|rls", "outbound|x||rls",
		"outbound|8081||", "outbound|8081||rls:80", "inbound|8081||rls", "a|b:80", "outbound|8081||a|b"} {
		if got, ok := ParseRateLimitService(in); ok {
			t.Errorf("%q parsed as %+v", in, got)
		}
	}
}
