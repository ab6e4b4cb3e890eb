package fault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"
)

// Helpers for metamesh running as processes (controlplane, proxy, run).

// meshTmpl is a greetings service with two subsets under names that a
// test picks, and one route to one of them. Renaming the subsets renames
// their clusters: an edit then removes the clusters the route in force
// uses and adds the ones the new route uses.
var meshTmpl = template.Must(template.New("").Parse(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greetings}
spec:
  hosts: [{{.Iface}}]
  ports: [{number: {{.Port}}, name: dubbo, protocol: dubbo}]
  endpoints:
  - {address: 127.0.0.1, ports: {dubbo: {{.V1}}}, labels: {version: v1}}
  - {address: 127.0.0.1, ports: {dubbo: {{.V2}}}, labels: {version: v2}}
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: greetings}
spec:
  host: {{.Iface}}
  subsets: [{name: {{.S1}}, labels: {version: v1}}, {name: {{.S2}}, labels: {version: v2}}]
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: greetings}
spec:
  hosts: [{{.Iface}}]
  routes:
  - name: all
    route: [{destination: {host: {{.Iface}}, subset: {{.To}}}}]
`))

// meshConfig is one state of meshTmpl; Want is the greeter version its
// route sends calls to.
type meshConfig struct {
	Iface, Port, V1, V2 string
	S1, S2, To          string
	Want                string
}

// write replaces dir/greetings.yaml atomically, as an editor or a
// ConfigMap update does.
func (c meshConfig) write(t testing.TB, dir string) {
	t.Helper()
	var buf bytes.Buffer
	if err := meshTmpl.Execute(&buf, c); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".greetings.yaml.tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "greetings.yaml")); err != nil {
		t.Fatal(err)
	}
}

func get(addr, path string) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// proxyVersion is the proxy's config version from /config_dump:
// "cluster=… endpoint=… listener=… route=…" ("" if unreachable).
func proxyVersion(admin string) string {
	var d struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal([]byte(get(admin, "/config_dump")), &d)
	return d.Version
}

// cpState is the control plane's /debug/proxies.
type cpState struct {
	Versions map[string]string `json:"versions"`
	Proxies  []struct {
		Node  string            `json:"node"`
		Acked map[string]string `json:"acked"`
	} `json:"proxies"`
}

func controlPlane(admin string) cpState {
	var s cpState
	_ = json.Unmarshal([]byte(get(admin, "/debug/proxies")), &s)
	return s
}

// version renders the control plane's versions as the proxy's /config_dump
// does.
func (s cpState) version() string {
	if len(s.Versions) == 0 {
		return ""
	}
	parts := make([]string, 0, len(s.Versions))
	for typ, v := range s.Versions {
		parts = append(parts, typ+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func dialable(addr string) bool {
	nc, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err == nil {
		nc.Close()
	}
	return err == nil
}

// versionLog records every config version the proxy shows, in order, by
// polling /config_dump until stopped.
type versionLog struct {
	mu   sync.Mutex
	seen []string
	stop chan struct{}
	done chan struct{}
}

func watchVersions(admin string) *versionLog {
	l := &versionLog{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			if v := proxyVersion(admin); v != "" {
				l.mu.Lock()
				if len(l.seen) == 0 || l.seen[len(l.seen)-1] != v {
					l.seen = append(l.seen, v)
				}
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// since returns the versions seen from index i on.
func (l *versionLog) since(i int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen[min(i, len(l.seen)):]...)
}

func (l *versionLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

func (l *versionLog) close() {
	close(l.stop)
	<-l.done
}

func describe(vs []string) string { return fmt.Sprintf("%q", vs) }
