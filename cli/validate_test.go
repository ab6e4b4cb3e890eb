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

func runValidate(t *testing.T, dir string) (string, error) {
	t.Helper()
	cmd := validateCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{dir})
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
