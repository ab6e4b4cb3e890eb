// Package admin serves a proxy's admin endpoints (API.md): /ready,
// /metrics, /config_dump and /clusters.
package admin

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/proxy"
)

// Handler returns the admin mux for srv.
func Handler(srv *proxy.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !srv.Ready() {
			http.Error(w, "no config applied yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(srv.Metrics().Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /config_dump", func(w http.ResponseWriter, _ *http.Request) { configDump(w, srv) })
	mux.HandleFunc("GET /clusters", func(w http.ResponseWriter, _ *http.Request) { clusters(w, srv) })
	return mux
}

func configDump(w http.ResponseWriter, srv *proxy.Server) {
	snap := srv.Snapshot()
	out := map[string][]json.RawMessage{"listeners": nil, "clusters": nil, "endpoints": nil, "routes": nil}
	if snap != nil {
		res := snap.Resources
		add := func(key string, m proto.Message) {
			b, err := protojson.Marshal(m)
			if err == nil {
				out[key] = append(out[key], b)
			}
		}
		for _, m := range res.Listeners {
			add("listeners", m)
		}
		for _, m := range res.Clusters {
			add("clusters", m)
		}
		for _, m := range res.Endpoints {
			add("endpoints", m)
		}
		for _, m := range res.Routes {
			add("routes", m)
		}
	}
	writeJSON(w, out)
}

type hostView struct {
	Address string `json:"address"`
	Weight  uint32 `json:"weight"`
	Active  int64  `json:"active_requests"`
	// EjectedUntil is set while outlier detection keeps the host out.
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
	Ejections    int32      `json:"ejections,omitempty"`
}

type clusterView struct {
	Name   string     `json:"name"`
	Policy string     `json:"lb_policy"`
	Hosts  []hostView `json:"hosts"`
}

func clusters(w http.ResponseWriter, srv *proxy.Server) {
	views := []clusterView{}
	if snap := srv.Snapshot(); snap != nil {
		now := time.Now()
		for _, c := range snap.Clusters {
			v := clusterView{Name: c.Name, Policy: c.Policy, Hosts: []hostView{}}
			for _, e := range c.Endpoints {
				h := hostView{Address: e.Host.Addr, Weight: e.Weight, Active: e.Host.Active(), Ejections: e.Host.Ejections()}
				if u := e.Host.EjectedUntil(now); !u.IsZero() {
					h.EjectedUntil = &u
				}
				v.Hosts = append(v.Hosts, h)
			}
			views = append(views, v)
		}
	}
	sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
	writeJSON(w, views)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
