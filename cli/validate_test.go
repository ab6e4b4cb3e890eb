package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The codecs cmd/metamesh builds in.
	_ "github.com/metamesh/metamesh/protocols/builtin"
)

func runValidate(t *testing.T, dir string, flags ...string) (string, error) {
	t.Helper()
	cmd := validateCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{dir}, flags...))
	err := cmd.Execute()
	return out.String(), err
}

func TestValidateDemo(t *testing.T) {
	out, err := runValidate(t, filepath.Join("..", "testdata", "demo"))
	if err != nil || !strings.Contains(out, ": ok") {
		t.Fatalf("validate testdata/demo: %v\n%s", err, out)
	}
}

func TestValidateReportsFieldAndTranslationProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bad.yaml", `apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: r}
spec:
  hosts: [a.B]
  routes:
  - name: split
    route:
    - {destination: {host: a.B, subset: v1}, weight: 60}
    - {destination: {host: a.B, subset: v2}, weight: 20}
`)
	out, err := runValidate(t, dir)
	if err == nil || !strings.Contains(out, "bad.yaml:MetaRouter/r: spec.routes[0].route") {
		t.Fatalf("want a problem naming the file, object and field; err %v, output:\n%s", err, out)
	}

	// Valid objects whose references don't resolve: the translation's
	// findings are problems too.
	write("bad.yaml", `apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: r}
spec:
  hosts: [a.B]
  routes:
  - name: all
    route: [{destination: {host: a.B}}]
`)
	out, err = runValidate(t, dir)
	if err == nil || !strings.Contains(out, "bad.yaml:MetaRouter/r: spec.hosts") || !strings.Contains(out, "(UnknownHost)") {
		t.Fatalf("want an UnknownHost problem; err %v, output:\n%s", err, out)
	}
}

// Over-cap input is refused with the file (and object and field) named,
// one short line each: neither a huge file nor a huge value is echoed.
func TestValidateCaps(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	se := func(label string) string {
		return `apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: s, namespace: default}
spec:
  hosts: [a.b]
  ports: [{number: 20880, name: dubbo, protocol: dubbo}]
  endpoints: [{address: 127.0.0.1, labels: {version: ` + label + `}}]
`
	}
	write("huge.yaml", se("v1")+strings.Repeat("#"+strings.Repeat(" ", 99)+"\n", 4<<20/100))
	write("label.yaml", se(strings.Repeat("v", 1<<20)))
	out, err := runValidate(t, dir)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, ".yaml") {
			lines = append(lines, l)
		}
	}
	want := []string{
		"huge.yaml: file too large: ",
		"label.yaml:ServiceEntry/s: spec.endpoints[0].labels[version]: Too long: may not be more than 63 bytes",
	}
	if err == nil || len(lines) != len(want) {
		t.Fatalf("err %v, output:\n%.2000s\nwant %d lines", err, out, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) || len(lines[i]) > 300 {
			t.Errorf("line %d: %.300q, want a short one starting %q", i, lines[i], w)
		}
	}
}

// TestValidateBlamesTheNewerObject: of two MetaRouters for one host,
// validate names the one in the file written last (the one just added),
// not the one whose name sorts later.
func TestValidateBlamesTheNewerObject(t *testing.T) {
	dir := t.TempDir()
	old := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(name, body string, modified time.Time) {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, modified, modified); err != nil {
			t.Fatal(err)
		}
	}
	router := func(name string) string {
		return "apiVersion: metamesh.io/v1alpha1\nkind: MetaRouter\nmetadata: {name: " + name + "}\n" +
			"spec:\n  hosts: [org.example.Greetings]\n  routes:\n  - name: all\n    route: [{destination: {host: org.example.Greetings}}]\n"
	}
	write("se.yaml", "apiVersion: metamesh.io/v1alpha1\nkind: ServiceEntry\nmetadata: {name: greetings}\n"+
		"spec:\n  hosts: [org.example.Greetings]\n  ports: [{number: 20880, name: dubbo, protocol: dubbo}]\n  endpoints: [{address: 127.0.0.1}]\n", old)
	write("greetings.yaml", router("greetings"), old)
	write("broken.yaml", router("broken"), old.Add(time.Hour))
	out, err := runValidate(t, dir)
	want := "broken.yaml:MetaRouter/broken: spec.hosts[0]: org.example.Greetings is already routed by MetaRouter default/greetings, in greetings.yaml\n"
	// The problems come first (cobra prints the usage after them).
	if err == nil || !strings.HasPrefix(out, want) || strings.Contains(out, "greetings.yaml:MetaRouter") {
		t.Fatalf("validate: err %v, output:\n%swant only the problem:\n%s", err, out, want)
	}
}

func TestValidateNotesServiceEntryRelyingOnRegistry(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "se.yaml"), []byte(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter}
spec:
  hosts: [com.x.Greeter]
  ports: [{number: 20880, name: dubbo, protocol: dubbo}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runValidate(t, dir)
	if err != nil || !strings.Contains(out, "note: se.yaml:ServiceEntry/greeter: no endpoints") || !strings.Contains(out, "validate does not contact") {
		t.Fatalf("want a note (not a problem) on the ServiceEntry without endpoints; err %v, output:\n%s", err, out)
	}
}

// Hosts that only a registry provides: unknown without --registry; with
// it, a note naming the host and the objects that name it, and the rest of
// the checks still run (a subset no DestinationPolicy defines is still a
// problem). A bad URL is refused.
func TestValidateRegistryProvidedHosts(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) {
		if err := os.WriteFile(filepath.Join(dir, "greeter.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const policy = `apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: greeter}
spec:
  host: org.apache.dubbo.Greeter
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
`
	router := func(subset string) string {
		return `apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: split}
spec:
  hosts: [org.apache.dubbo.Greeter]
  routes:
  - name: split
    route:
    - {destination: {host: org.apache.dubbo.Greeter, subset: v1}, weight: 80}
    - {destination: {host: org.apache.dubbo.Greeter, subset: ` + subset + `}, weight: 20}
`
	}
	write(policy + router("v2"))
	out, err := runValidate(t, dir)
	if err == nil || !strings.Contains(out, "no ServiceEntry defines org.apache.dubbo.Greeter") {
		t.Fatalf("without --registry: want the host unknown; err %v, output:\n%s", err, out)
	}

	const zk = "zookeeper://127.0.0.1:1"
	out, err = runValidate(t, dir, "--registry", zk)
	want := "note: org.apache.dubbo.Greeter (named by DestinationPolicy/greeter, MetaRouter/split): no ServiceEntry defines it; " +
		"taken as provided by the registry (" + zk + ")"
	if err != nil || !strings.Contains(out, want) || !strings.Contains(out, dir+": ok") || strings.Contains(out, "unknown (") {
		t.Fatalf("with --registry: want ok and the note\n%s\nerr %v, output:\n%s", want, err, out)
	}

	write(policy + router("v3"))
	out, err = runValidate(t, dir, "--registry", zk)
	if err == nil || !strings.Contains(out, `has no subset "v3"`) {
		t.Fatalf("with --registry: want the unknown subset still a problem; err %v, output:\n%s", err, out)
	}

	if out, err = runValidate(t, dir, "--registry", "zookeper://127.0.0.1:2181"); err == nil || !strings.Contains(err.Error(), "unknown scheme") {
		t.Fatalf("a misspelt registry URL: want refused; err %v, output:\n%s", err, out)
	}
}

// Sidecar and exportTo are checked by field, as every kind is.
func TestValidateScoping(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("scope.yaml", `apiVersion: metamesh.io/v1alpha1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress: [{hosts: ["./*", "greeter"]}]
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: greeter}
spec:
  hosts: [org.example.Greeter]
  exportTo: ["*", shop]
  ports: [{number: 20880, name: dubbo, protocol: dubbo}]
`)
	out, err := runValidate(t, dir)
	for _, want := range []string{`scope.yaml:Sidecar/default: spec.egress[0].hosts[1]: Invalid value: "greeter": must be "namespace/host"`,
		`scope.yaml:ServiceEntry/greeter: spec.exportTo: Invalid value`} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("want %q; err %v, output:\n%s", want, err, out)
		}
	}
	write("scope.yaml", `apiVersion: metamesh.io/v1alpha1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress: [{hosts: ["./*", "greeter/*"]}]
`)
	if out, err := runValidate(t, dir); err != nil {
		t.Errorf("a valid Sidecar: %v\n%s", err, out)
	}
}
