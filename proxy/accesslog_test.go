package proxy

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAccessLog(t *testing.T) {
	up := startEcho(t, "v1")
	path := filepath.Join(t.TempDir(), "access.log")
	_, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{freeAddr(t)},
		AccessLog: "{mode: ALL, path: " + path + "}"})
	c := dial(t, addr)
	c.call(7, svc, "sayHello")
	c.call(8, "com.example.Nope", "m")
	c.call(9, svc, "m", header("batchjob", "true")) // v2 refuses connections

	var lines []map[string]any
	waitUntil(t, 5*time.Second, "3 access log lines", func() bool {
		lines = readJSONLines(t, path)
		return len(lines) >= 3
	})
	want := []map[string]any{
		{"protocol": "dubbo", "listener": "dubbo", "service": svc, "method": "sayHello", "route": "default", "cluster": "v1",
			"upstream": up.addr(), "status": "ok", "request_id": 7.0},
		{"service": "*", "status": "no_route", "request_id": 8.0, "upstream": ""},
		{"route": "batchjob", "cluster": "v2", "status": "no_healthy_upstream", "request_id": 9.0},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v\n%v", i, k, lines[i][k], v, lines[i])
			}
		}
		for _, k := range []string{"time", "duration", "request_bytes", "client"} {
			if _, ok := lines[i][k]; !ok {
				t.Errorf("line %d has no %s: %v", i, k, lines[i])
			}
		}
	}
	if lines[0]["response_bytes"].(float64) == 0 {
		t.Errorf("line 0: response_bytes 0 for a reply")
	}
}

func TestAccessLogSampledNone(t *testing.T) {
	up := startEcho(t, "v1")
	path := filepath.Join(t.TempDir(), "access.log")
	_, addr := startProxy(t, setup{V1: []string{up.addr()}, AccessLog: "{mode: SAMPLED, sample_percent: 0, path: " + path + "}"})
	c := dial(t, addr)
	for i := range 50 {
		c.call(uint64(i+1), svc, "m")
	}
	time.Sleep(100 * time.Millisecond) // lines are written in the background
	if lines := readJSONLines(t, path); len(lines) != 0 {
		t.Fatalf("%d lines logged at 0%%", len(lines))
	}
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}
