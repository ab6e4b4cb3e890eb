package file

import (
	"strings"
	"testing"
)

const authorizationPolicy = `apiVersion: metamesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: allow-hello}
spec:
  hosts: [org.apache.dubbo.samples.api.GreetingsService]
  rules:
  - from: [{ipBlocks: [127.0.0.0/8]}]
    to: [{methods: [sayHello], notAttributes: {debug: {exact: "true"}}}]
`

func TestLoadAuthorizationPolicy(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"se.yaml": serviceEntry, "authz.yaml": authorizationPolicy})
	cfg, problems := Load(dir)
	if len(problems) > 0 {
		t.Fatalf("Load: %v", problems.Err())
	}
	if len(cfg.AuthorizationPolicies) != 1 {
		t.Fatalf("%d AuthorizationPolicies, want 1", len(cfg.AuthorizationPolicies))
	}
	ap := cfg.AuthorizationPolicies[0]
	if ap.Namespace != "default" || ap.Spec.Rules[0].To[0].Methods[0] != "sayHello" || *ap.Spec.Rules[0].To[0].NotAttributes["debug"].Exact != "true" {
		t.Errorf("decoded wrong: %s/%s %+v", ap.Namespace, ap.Name, ap.Spec)
	}
	if src := cfg.Sources["AuthorizationPolicy/default/allow-hello"]; src != "authz.yaml" {
		t.Errorf("source %q, want authz.yaml", src)
	}
	if in := cfg.Input(); len(in.AuthorizationPolicies) != 1 || len(in.ServiceEntries) != 1 {
		t.Errorf("Input misses objects: %+v", in)
	}
}

func TestLoadAuthorizationPolicyProblems(t *testing.T) {
	for _, tc := range []struct{ name, edit, want string }{
		{"unknown action", strings.Replace(authorizationPolicy, "  rules:", "  action: LOG\n  rules:", 1), "authz.yaml:AuthorizationPolicy/allow-hello: spec.action: Unsupported value"},
		{"bad ip block", strings.Replace(authorizationPolicy, "127.0.0.0/8", "127.0.0.1/8", 1), "authz.yaml:AuthorizationPolicy/allow-hello: spec.rules[0].from[0].ipBlocks[0]: Invalid value"},
		{"unknown field", strings.Replace(authorizationPolicy, "methods:", "method:", 1), "authz.yaml:AuthorizationPolicy/allow-hello: spec.rules[0].to[0].method: unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"se.yaml": serviceEntry, "authz.yaml": tc.edit})
			_, problems := Load(dir)
			if len(problems) == 0 || !strings.HasPrefix(problems[0].String(), tc.want) {
				t.Fatalf("problems %v, want one starting %q", problems, tc.want)
			}
		})
	}
}

const aerakiDubboPolicy = `apiVersion: dubbo.aeraki.io/v1alpha1
kind: DubboAuthorizationPolicy
metadata: {name: deny-dev, namespace: default}
spec:
  action: DENY
  rules:
  - from: [{source: {namespaces: [dev]}}]
    to: [{operation: {interfaces: ["*"], methods: ["*"]}}]
`

func TestLoadAerakiDubboAuthorizationPolicy(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"se.yaml": serviceEntry, "dap.yaml": aerakiDubboPolicy})
	cfg, problems := Load(dir)
	if len(problems) > 0 {
		t.Fatalf("Load: %v", problems.Err())
	}
	if len(cfg.AuthorizationPolicies) != 1 {
		t.Fatalf("%d AuthorizationPolicies, want the converted one", len(cfg.AuthorizationPolicies))
	}
	ap := cfg.AuthorizationPolicies[0]
	if ap.Spec.Action != "DENY" || ap.Spec.Protocols[0] != "dubbo" || ap.Spec.Rules[0].From[0].Namespaces[0] != "dev" || ap.Spec.Rules[0].To[0].Services[0] != "*" {
		t.Errorf("converted wrong: %+v", ap.Spec)
	}
	key := "AuthorizationPolicy/default/deny-dev"
	if src := cfg.Sources[key]; src != "dap.yaml"+AerakiDubboSuffix || SourceFile(src) != "dap.yaml" {
		t.Errorf("source %q", src)
	}

	// What can't be converted is refused with the field.
	writeFiles(t, dir, map[string]string{"dap.yaml": strings.Replace(aerakiDubboPolicy, "action: DENY", "action: AUDIT", 1)})
	if _, problems := Load(dir); len(problems) != 1 || !strings.HasPrefix(problems[0].String(), "dap.yaml:DubboAuthorizationPolicy/deny-dev: spec.action: Unsupported value") {
		t.Fatalf("problems %v, want spec.action refused", problems)
	}
}
