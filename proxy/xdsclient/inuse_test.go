package xdsclient_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/xdsclient"
)

// A push that renames the subsets (removing the clusters the route in
// force uses) and moves the route arrives as one response per type,
// clusters first. No set the proxy applies on the way has a route to a
// cluster it lacks: the old clusters stay until the new routes are in, and
// go with them. (The fault suite's TestControlPlaneKilled found calls
// failing with "cluster … does not exist" in between.)
func TestClustersInUseOutliveTheirRemoval(t *testing.T) {
	port, release := holdPort(t)
	cp := startControlPlane(t, "127.0.0.1:0", configNamed(port, "a1", "a2", "a1", ""))
	release()
	srv := proxy.New(zaptest.NewLogger(t).Named("proxy"), metrics.NewProxy())
	var mu sync.Mutex
	var dangling []string
	var applied []*xdsapi.Resources
	c, err := xdsclient.New(xdsclient.Config{Address: cp.addr, NodeID: "p1", Log: zaptest.NewLogger(t).Named("ads"),
		Apply: func(res *xdsapi.Resources) error {
			have := map[string]bool{}
			for _, cl := range res.Clusters {
				have[cl.GetName()] = true
			}
			mu.Lock()
			defer mu.Unlock()
			for _, rc := range res.Routes {
				for _, vh := range rc.GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						if name := r.GetRoute().GetCluster(); !have[name] {
							dangling = append(dangling, fmt.Sprintf("%s → %s (version %s)", r.GetName(), name, res.Version))
						}
					}
				}
			}
			applied = append(applied, res)
			return srv.Apply(res)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = srv.Shutdown(context.Background())
	})
	waitFor(t, 5*time.Second, "the first config", srv.Ready)

	old := "a"
	for _, to := range []string{"b2", "c1", "d2"} {
		s1, s2 := to[:1]+"1", to[:1]+"2"
		cp.Update(configNamed(port, s1, s2, to, ""))
		waitFor(t, 5*time.Second, "the move to "+to, func() bool { return routedTo(srv) == to })
		// Once the routes moved, the old subsets' clusters are gone.
		var names []string
		for _, cl := range srv.Snapshot().Resources.Clusters {
			names = append(names, cl.GetName())
		}
		all := strings.Join(names, " ")
		if !strings.Contains(all, "|"+s1+"|") || !strings.Contains(all, "|"+s2+"|") ||
			strings.Contains(all, "|"+old+"1|") || strings.Contains(all, "|"+old+"2|") {
			t.Fatalf("after the move to %s: clusters in force %v, want %s's and %s's, none of %s1 or %s2", to, names, s1, s2, old, old)
		}
		old = to[:1]
	}
	mu.Lock()
	defer mu.Unlock()
	if len(applied) < 4 {
		t.Fatalf("%d sets applied, want the first and at least one per move", len(applied))
	}
	if len(dangling) > 0 {
		t.Fatalf("sets applied with routes to missing clusters:\n%s", strings.Join(dangling, "\n"))
	}
}
