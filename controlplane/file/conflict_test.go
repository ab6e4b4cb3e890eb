package file

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Objects for conflicts: every document is complete, so that only the
// conflict is wrong.
func conflictEntry(name, host string, port int, proto string) string {
	return "apiVersion: metamesh.io/v1alpha1\nkind: ServiceEntry\nmetadata: {name: " + name + "}\nspec:\n  hosts: [" + host +
		"]\n  ports: [{number: " + strconv.Itoa(port) + ", name: p, protocol: " + proto + "}]\n  endpoints: [{address: 127.0.0.1}]\n"
}

func conflictRouter(name, host string) string {
	return "apiVersion: metamesh.io/v1alpha1\nkind: MetaRouter\nmetadata: {name: " + name + "}\nspec:\n  hosts: [" + host +
		"]\n  routes:\n  - name: all\n    route: [{destination: {host: " + host + "}}]\n"
}

func sidecar(name string) string {
	return "apiVersion: metamesh.io/v1alpha1\nkind: Sidecar\nmetadata: {name: " + name + "}\nspec:\n  egress: [{hosts: [./*]}]\n"
}

func conflictPolicy(name, host string) string {
	return "apiVersion: metamesh.io/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: " + name + "}\nspec: {host: " + host + "}\n"
}

// TestLoadConflicts: a conflict is a problem on the newer object, named by
// its file: the newer is the one with the later creationTimestamp when
// written, else the later file modification time, else the later
// namespace/name. Each case names the newer file so that name order alone
// would blame the other one.
func TestLoadConflicts(t *testing.T) {
	greetings := conflictEntry("greetings", "org.example.Greetings", 20880, "dubbo")
	old, recent := written, written.Add(time.Hour)
	type file struct {
		body     string
		modified time.Time
	}
	for _, tc := range []struct {
		name  string
		files map[string]file
		want  string // the one problem
	}{{
		name: "MetaRouter host: the file added later",
		files: map[string]file{
			"se.yaml": {greetings, old}, "greetings.yaml": {conflictRouter("greetings", "org.example.Greetings"), old},
			"broken.yaml": {conflictRouter("broken", "org.example.Greetings"), recent},
		},
		want: "broken.yaml:MetaRouter/broken: spec.hosts[0]: org.example.Greetings is already routed by MetaRouter default/greetings, in greetings.yaml",
	}, {
		name: "MetaRouter host: a written creationTimestamp comes before the file's time",
		files: map[string]file{
			"se.yaml": {greetings, old},
			"greetings.yaml": {strings.Replace(conflictRouter("greetings", "org.example.Greetings"), "{name: greetings}",
				`{name: greetings, creationTimestamp: "2030-01-01T00:00:00Z"}`, 1), old},
			"broken.yaml": {conflictRouter("broken", "org.example.Greetings"), recent},
		},
		want: "greetings.yaml:MetaRouter/greetings: spec.hosts[0]: org.example.Greetings is already routed by MetaRouter default/broken, in broken.yaml",
	}, {
		name: "MetaRouter host: same time, namespace/name decides",
		files: map[string]file{
			"se.yaml":      {greetings, old},
			"routers.yaml": {conflictRouter("greetings", "org.example.Greetings") + "---\n" + conflictRouter("broken", "org.example.Greetings"), old},
		},
		want: "routers.yaml:MetaRouter/greetings: spec.hosts[0]: org.example.Greetings is already routed by MetaRouter default/broken, in routers.yaml:2",
	}, {
		name: "ServiceEntry host",
		files: map[string]file{
			"z.yaml": {greetings, old},
			"a.yaml": {conflictEntry("a-copy", "org.example.Greetings", 20881, "dubbo"), recent},
		},
		want: "a.yaml:ServiceEntry/a-copy: spec.hosts[0]: org.example.Greetings is already defined by ServiceEntry default/greetings, in z.yaml",
	}, {
		name: "ServiceEntry port",
		files: map[string]file{
			"z.yaml": {conflictEntry("thrift", "thrift.Z", 9090, "thrift"), old},
			"a.yaml": {conflictEntry("dubbo", "dubbo.A", 9090, "dubbo"), recent},
		},
		want: "a.yaml:ServiceEntry/dubbo: spec.ports[0]: port 9090 already carries protocol thrift (thrift.Z of ServiceEntry default/thrift), in z.yaml",
	}, {
		name: "DestinationPolicy host",
		files: map[string]file{
			"se.yaml": {greetings, old}, "z.yaml": {conflictPolicy("z", "org.example.Greetings"), old},
			"a.yaml": {conflictPolicy("a", "org.example.Greetings"), recent},
		},
		want: "a.yaml:DestinationPolicy/a: spec.host: org.example.Greetings already has DestinationPolicy default/z, in z.yaml",
	}, {
		name: "MetaRouters exported apart don't conflict; one exported to all does",
		files: map[string]file{
			"se.yaml":   {greetings, old},
			"shop.yaml": {strings.Replace(conflictRouter("shop", "org.example.Greetings"), "spec:\n", "spec:\n  exportTo: [shop]\n", 1), old},
			"own.yaml":  {strings.Replace(conflictRouter("own", "org.example.Greetings"), "spec:\n", "spec:\n  exportTo: [\".\"]\n", 1), old},
			"a.yaml":    {conflictRouter("a", "org.example.Greetings"), recent},
		},
		want: "a.yaml:MetaRouter/a: spec.hosts[0]: org.example.Greetings is already routed by MetaRouter default/own exported to namespaces default " +
			"(this one is exported to every namespace), in own.yaml",
	}, {
		name: "two Sidecars in a namespace",
		files: map[string]file{
			"z.yaml": {sidecar("z"), old},
			"a.yaml": {sidecar("a"), recent},
		},
		want: "a.yaml:Sidecar/a: metadata.name: namespace default already has Sidecar z; a namespace has one, in z.yaml",
	}, {
		name: "ApplicationProtocol named like a built-in",
		files: map[string]file{
			"ap.yaml": {"apiVersion: metamesh.io/v1alpha1\nkind: ApplicationProtocol\nmetadata: {name: thrift}\nspec: {codec: dubbo}\n", old},
		},
		want: `ap.yaml:ApplicationProtocol/thrift: metadata.name: "thrift" is a built-in protocol`,
	}, {
		name: "ApplicationProtocol name: Aeraki's protocol named like one in force",
		files: map[string]file{
			"z.yaml": {strings.Replace(applicationProtocol, "{name: my-rpc}", "{name: brpc}", 1), old},
			"a.yaml": {aerakiApplicationProtocol, recent},
		},
		want: `a.yaml:ApplicationProtocol/brpc: metadata.name: Duplicate value: "brpc": also defined in z.yaml`,
	}, {
		name: "the same object in two files",
		files: map[string]file{
			"z.yaml": {conflictRouter("demo", "org.example.Greetings"), old},
			"a.yaml": {conflictRouter("demo", "org.example.Other"), recent},
		},
		want: `a.yaml:MetaRouter/demo: metadata.name: Duplicate value: "default/demo": also defined in z.yaml`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, f := range tc.files {
				writeFile(t, dir, name, f.body, f.modified)
			}
			cfg, problems := Load(dir)
			if cfg != nil || len(problems) != 1 || problems[0].String() != tc.want {
				t.Fatalf("Load = %v, problems:\n%v\nwant only:\n%s", cfg != nil, problems.Err(), tc.want)
			}
		})
	}
}
