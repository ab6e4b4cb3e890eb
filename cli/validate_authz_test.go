package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validate checks AuthorizationPolicies (and Aeraki's, converted) as run
// reads them: field problems, conversion refusals, unknown hosts; a valid
// one passes.
func TestValidateAuthorizationPolicies(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("se.yaml", `apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: g}
spec:
  hosts: [a.Greeter]
  ports: [{number: 20880, name: dubbo, protocol: dubbo}]
`)
	policy := `apiVersion: metamesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: p}
spec:
  hosts: [a.Greeter]
  rules: [{from: [{ipBlocks: [10.0.0.0/8]}], to: [{methods: [sayHello]}]}]
`
	write("authz.yaml", policy)
	write("dap.yaml", `apiVersion: dubbo.aeraki.io/v1alpha1
kind: DubboAuthorizationPolicy
metadata: {name: d}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: [sleep]}}]}]
`)
	if out, err := runValidate(t, dir); err != nil || !strings.Contains(out, ": ok") {
		t.Fatalf("valid policies: %v\n%s", err, out)
	}

	for _, tc := range []struct{ file, body, want string }{
		{"authz.yaml", strings.Replace(policy, "10.0.0.0/8", "10.0.0.1/8", 1), "authz.yaml:AuthorizationPolicy/p: spec.rules[0].from[0].ipBlocks[0]"},
		{"authz.yaml", strings.Replace(policy, "sayHello", "say*Hello", 1), "authz.yaml:AuthorizationPolicy/p: spec.rules[0].to[0].methods[0]"},
		{"authz.yaml", strings.Replace(policy, "hosts: [a.Greeter]", "hosts: [b.Nowhere]", 1), "authz.yaml:AuthorizationPolicy/p: spec.hosts"},
		{"dap.yaml", "apiVersion: dubbo.aeraki.io/v1alpha1\nkind: DubboAuthorizationPolicy\nmetadata: {name: d}\nspec: {action: AUDIT}\n", "dap.yaml:DubboAuthorizationPolicy/d: spec.action"},
	} {
		write(tc.file, tc.body)
		out, err := runValidate(t, dir)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("want a problem %q; err %v, output:\n%s", tc.want, err, out)
		}
		write("authz.yaml", policy)
		write("dap.yaml", "apiVersion: dubbo.aeraki.io/v1alpha1\nkind: DubboAuthorizationPolicy\nmetadata: {name: d}\nspec: {action: DENY}\n")
	}
}
