package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
