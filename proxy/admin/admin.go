// Package admin serves a proxy's admin endpoints (docs/reference.md): /ready,
// /metrics, /config_dump and /clusters.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/certs"
	"github.com/metamesh/metamesh/proxy/rediscluster"
)

// Options are the admin endpoints beyond the always-on ones.
type Options struct {
	// Level, when set, is served on /logging: GET shows it, POST or PUT
	// /logging?level=debug changes it live.
	Level *zap.AtomicLevel
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
	// Certs, when set, is served on /certs: the SPIFFE ID, validity and
	// serial of the workload certificate in force (docs/identity.md).
	Certs *certs.Store
}

// NewHandler returns the admin mux for srv.
func NewHandler(srv *proxy.Server, o Options) http.Handler {
	mux := http.NewServeMux()
	if o.Level != nil {
		mux.HandleFunc("/logging", func(w http.ResponseWriter, r *http.Request) { logging(w, r, o.Level) })
	}
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
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
	if o.Certs != nil {
		mux.HandleFunc("GET /certs", certsHandler(o.Certs))
	}
	return guard(mux)
}

func configDump(w http.ResponseWriter, srv *proxy.Server) {
	snap := srv.Snapshot()
	out := map[string]any{"version": "", "listeners": []json.RawMessage{}, "clusters": []json.RawMessage{},
		"endpoints": []json.RawMessage{}, "routes": []json.RawMessage{}}
	if snap != nil {
		res := snap.Resources
		out["version"] = res.Version
		add := func(key string, m proto.Message) {
			b, err := protojson.Marshal(m)
			if err == nil {
				out[key] = append(out[key].([]json.RawMessage), b)
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
	// Unreachable: the last connection attempt failed and no reconnect
	// has succeeded yet; the host is skipped while others can be picked.
	Unreachable bool `json:"unreachable,omitempty"`
}

type clusterView struct {
	Name   string     `json:"name"`
	Policy string     `json:"lb_policy"`
	Hosts  []hostView `json:"hosts"`
	// RedisCluster is the slot map of a Redis Cluster in use (its hosts
	// are the seed nodes).
	RedisCluster *rediscluster.View `json:"redis_cluster,omitempty"`
}

func clusters(w http.ResponseWriter, srv *proxy.Server) {
	views := []clusterView{}
	maps := map[string]*rediscluster.View{}
	for _, v := range srv.RedisClusters() {
		if _, ok := maps[v.Cluster]; !ok {
			maps[v.Cluster] = &v
		}
	}
	if snap := srv.Snapshot(); snap != nil {
		now := time.Now()
		for _, c := range snap.Clusters {
			v := clusterView{Name: c.Name, Policy: c.Policy, Hosts: []hostView{}, RedisCluster: maps[c.Name]}
			for _, e := range c.Endpoints {
				h := hostView{Address: e.Host.Addr, Weight: e.Weight, Active: e.Host.Active(), Ejections: e.Host.Ejections(),
					Unreachable: e.Host.Unreachable()}
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

// logging shows or sets the log level.
func logging(w http.ResponseWriter, r *http.Request, level *zap.AtomicLevel) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost, http.MethodPut:
		want := r.URL.Query().Get("level")
		if want == "" {
			http.Error(w, "level: required, one of debug, info, warn, error", http.StatusBadRequest)
			return
		}
		if err := level.UnmarshalText([]byte(want)); err != nil {
			http.Error(w, "level: "+err.Error(), http.StatusBadRequest)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST, PUT")
		http.Error(w, "use GET to read the level, POST or PUT ?level= to set it", http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, map[string]string{"level": level.String()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
