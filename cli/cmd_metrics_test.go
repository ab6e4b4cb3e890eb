package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

func freeAddr(t *testing.T) string { return freeAddrs(t, 1)[0] }

// freeAddrs returns n distinct addresses that were free a moment ago (all
// are held until every one is chosen: a port just freed is often the next
// one handed out).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// startCmd runs a command with args until the test ends and returns a
// getter for its admin address's paths (it waits for the admin server).
func startCmd(t *testing.T, cmd interface {
	SetArgs([]string)
	ExecuteContext(context.Context) error
}, admin string, args ...string) func(path string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var cmdErr error
	done := make(chan struct{})
	cmd.SetArgs(append(args, "--admin", admin, "--log-level", "error"))
	go func() { cmdErr = cmd.ExecuteContext(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if cmdErr != nil {
			t.Errorf("command: %v", cmdErr)
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (string, error) {
		resp, err := hc.Get("http://" + admin + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for i := 0; ; i++ {
		if _, err := get("/ready"); err == nil {
			break
		} else if i == 500 {
			t.Fatalf("admin server never answered: %v", err)
		}
		select {
		case <-done:
			t.Fatalf("command ended: %v", cmdErr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return func(path string) string {
		t.Helper()
		body, err := get(path)
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
}

// metamesh run --xds serves ADS; its admin /metrics has the ADS server's
// series beside the proxy's.
func TestRunXDSExportsControlPlaneMetrics(t *testing.T) {
	addrs := freeAddrs(t, 2)
	get := startCmd(t, runCmd(), addrs[0], "--config", t.TempDir(), "--xds", addrs[1], "--insecure",
		"--listen-address", "127.0.0.1")
	metrics := get("/metrics")
	for _, series := range []string{"metamesh_controlplane_config_updates_total", "metamesh_controlplane_xds_connected_proxies", "metamesh_ready"} {
		if !strings.Contains(metrics, "\n# TYPE "+series+" ") {
			t.Errorf("/metrics has no %s", series)
		}
	}
}

// metamesh run records its translations in the same series as metamesh
// controlplane, without --xds too.
func TestRunExportsTranslationMetrics(t *testing.T) {
	dir := t.TempDir()
	mr := "apiVersion: metamesh.io/v1alpha1\nkind: MetaRouter\nmetadata: {name: lost, namespace: default}\n" +
		"spec:\n  hosts: [nowhere]\n  routes: [{name: all, route: [{destination: {host: nowhere}}]}]\n"
	if err := os.WriteFile(filepath.Join(dir, "mr.yaml"), []byte(mr), 0o644); err != nil {
		t.Fatal(err)
	}
	get := startCmd(t, runCmd(), freeAddr(t), "--config", dir, "--listen-address", "127.0.0.1")
	for i := 0; !strings.HasPrefix(get("/ready"), "ready"); i++ {
		if i == 500 {
			t.Fatal("run never applied its config")
		}
		time.Sleep(10 * time.Millisecond)
	}
	metrics := get("/metrics")
	for _, sample := range []string{
		"\nmetamesh_controlplane_translation_duration_seconds_count 1\n",
		"\nmetamesh_controlplane_objects{condition=\"Accepted\",kind=\"MetaRouter\",status=\"False\"} 1\n",
	} {
		if !strings.Contains(metrics, sample) {
			t.Errorf("/metrics has no %q", strings.TrimSpace(sample))
		}
	}
}

// metamesh proxy --bootstrap names its config in /config_dump by the
// file's content hash.
func TestProxyBootstrapHasAVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(path, []byte(`resources:
- {"@type": type.googleapis.com/envoy.config.cluster.v3.Cluster, name: c, type: STATIC, load_assignment: {cluster_name: c, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := xdsapi.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	get := startCmd(t, proxyCmd(), freeAddr(t), "--bootstrap", path)
	var dump struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(get("/config_dump")), &dump); err != nil {
		t.Fatal(err)
	}
	if dump.Version != res.Hash() {
		t.Fatalf("config_dump version %q, want the file's content hash %q", dump.Version, res.Hash())
	}
}
