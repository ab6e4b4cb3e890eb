package translate

import (
	"testing"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/config"
)

// TestGlobalRateLimitViews: the proxies of a namespace that doesn't see
// the rate-limit service (exportTo ".") still get the cluster their
// limits name, so they accept the config; so do those of the service's
// own namespace, which see it.
func TestGlobalRateLimitViews(t *testing.T) {
	out := Translate(readInput(t, "testdata/global-ratelimit/input.yaml"), Options{ListenAddress: "127.0.0.1"})
	for name, res := range map[string]*xdsapi.Resources{"shop": out.Views.For("shop"), "infra": out.Views.For("infra"), "default": out.Views.Default} {
		if _, err := config.NewBuilder().Build(res); err != nil {
			t.Errorf("%s: the proxy refuses the view: %v", name, err)
		}
		seen := map[string]int{}
		for _, c := range res.Clusters {
			seen[c.Name]++
		}
		for _, want := range []string{"outbound|8081|v1|rls.infra.svc.cluster.local", "outbound|8081||rls.infra.svc.cluster.local"} {
			if seen[want] != 1 {
				t.Errorf("%s: cluster %s %d times, want once", name, want, seen[want])
			}
		}
	}
}
