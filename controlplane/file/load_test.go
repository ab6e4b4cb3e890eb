package file

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

const serviceEntry = `apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: demo, namespace: default}
spec:
  hosts: [org.apache.dubbo.samples.api.GreetingsService]
  ports:
  - {number: 20880, name: dubbo, protocol: dubbo}
  endpoints:
  - {address: 127.0.0.1, ports: {dubbo: 20881}, labels: {version: v1}}
  - {address: 127.0.0.1, ports: {dubbo: 20882}, labels: {version: v2}, weight: 2}
`

const destinationPolicy = `apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: demo}
spec:
  host: org.apache.dubbo.samples.api.GreetingsService
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  loadBalancer: {policy: CONSISTENT_HASH, hashKey: user-id}
  connectionPool: {maxConnections: 16, maxPendingRequests: 1024, connectTimeout: 1s, idleTimeout: 300s}
  outlierDetection: {consecutiveErrors: 5, interval: 5s, baseEjectionTime: 30s, maxEjectionPercent: 50}
`

// metaRouter returns the MetaRouter of crds/samples/metarouter.yaml with
// the canary split v1/v2.
func metaRouter(v1, v2 int) string {
	return `apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: demo}
spec:
  hosts: [org.apache.dubbo.samples.api.GreetingsService]
  routes:
  - name: batchjob-isolation
    match:
      attributes:
        batchjob: {exact: "true"}
    route:
    - destination: {host: org.apache.dubbo.samples.api.GreetingsService, subset: v2}
  - name: canary
    match: {attributes: {method: {prefix: "say"}}}
    route:
    - {destination: {host: org.apache.dubbo.samples.api.GreetingsService, subset: v1}, weight: ` + strconv.Itoa(v1) + `}
    - {destination: {host: org.apache.dubbo.samples.api.GreetingsService, subset: v2}, weight: ` + strconv.Itoa(v2) + `}
    timeout: 2s
    retries: {attempts: 2, perTryTimeout: 500ms, retryOn: [connect-failure, reset, unavailable]}
    mirror: {host: org.apache.dubbo.samples.api.GreetingsService, subset: v2}
    mirrorPercentage: 10
    requestMutation:  [{key: x-routed-by, value: metamesh}]
    responseMutation: [{key: x-served-by, value: metamesh}]
  - name: default
    route:
    - destination: {host: org.apache.dubbo.samples.api.GreetingsService, subset: v1}
  localRateLimit:
    tokenBucket: {maxTokens: 1000, tokensPerFill: 1000, fillInterval: 1s}
    conditions:
    - match: {attributes: {method: {exact: sayHello}}}
      tokenBucket: {maxTokens: 10, tokensPerFill: 10, fillInterval: 1s}
`
}

const applicationProtocol = `apiVersion: metamesh.io/v1alpha1
kind: ApplicationProtocol
metadata: {name: my-rpc}
spec: {codec: my-rpc, codecConfig: {}}
`

// Aeraki's traffic-split example, as Aeraki documents it.
const aerakiMetaRouter = `apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata:
  name: test-metaprotocol-route
  namespace: meta-dubbo
spec:
  hosts:
  - org.apache.dubbo.samples.basic.api.demoservice
  routes:
  - name: traffic-split
    match:
      attributes:
        interface:
          exact: org.apache.dubbo.samples.basic.api.DemoService
        method:
          exact: sayHello
    route:
    - destination:
        host: org.apache.dubbo.samples.basic.api.demoservice
        subset: v1
      weight: 20
    - destination:
        host: org.apache.dubbo.samples.basic.api.demoservice
        subset: v2
      weight: 80
`

const aerakiApplicationProtocol = `apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: ApplicationProtocol
metadata: {name: brpc, namespace: istio-system}
spec: {protocol: brpc, codec: aeraki.meta_protocol.codec.brpc}
`

// writeFiles writes files with one modification time, so that the age of
// their objects (see age) comes from their names, not from the order of
// the writes.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		writeFile(t, dir, name, content, written)
	}
}

// written is the modification time writeFiles gives.
var written = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func writeFile(t *testing.T, dir, name, content string, modified time.Time) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, modified, modified); err != nil {
		t.Fatal(err)
	}
}

func TestLoadEveryKind(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		// One multi-document file, with a leading separator, a comment-only
		// document and an empty one, which are all fine.
		"demo.yaml":   "---\n# the demo\n---\n" + serviceEntry + "---\n" + destinationPolicy + "---\n\n---\n" + metaRouter(80, 20),
		"proto.yml":   applicationProtocol,
		"aeraki.yaml": aerakiMetaRouter + "---\n" + aerakiApplicationProtocol,
	})
	cfg, problems := Load(dir)
	if len(problems) > 0 {
		t.Fatalf("Load: unexpected problems:\n%v", problems.Err())
	}
	names := func(n int, get func(i int) (string, string)) []string {
		var out []string
		for i := range n {
			ns, name := get(i)
			out = append(out, ns+"/"+name)
		}
		return out
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("ServiceEntries", names(len(cfg.ServiceEntries), func(i int) (string, string) {
		return cfg.ServiceEntries[i].Namespace, cfg.ServiceEntries[i].Name
	}), []string{"default/demo"})
	check("DestinationPolicies", names(len(cfg.DestinationPolicies), func(i int) (string, string) {
		return cfg.DestinationPolicies[i].Namespace, cfg.DestinationPolicies[i].Name
	}), []string{"default/demo"}) // namespace defaulted
	check("MetaRouters", names(len(cfg.MetaRouters), func(i int) (string, string) {
		return cfg.MetaRouters[i].Namespace, cfg.MetaRouters[i].Name
	}), []string{"default/demo", "meta-dubbo/test-metaprotocol-route"}) // sorted
	check("ApplicationProtocols", names(len(cfg.ApplicationProtocols), func(i int) (string, string) {
		return cfg.ApplicationProtocols[i].Namespace, cfg.ApplicationProtocols[i].Name
	}), []string{"/brpc", "/my-rpc"}) // cluster-scoped

	wantSources := map[string]string{
		"ServiceEntry/default/demo":                     "demo.yaml:2",
		"DestinationPolicy/default/demo":                "demo.yaml:3",
		"MetaRouter/default/demo":                       "demo.yaml:5", // the blank document is 4
		"ApplicationProtocol//my-rpc":                   "proto.yml",
		"MetaRouter/meta-dubbo/test-metaprotocol-route": "aeraki.yaml:1" + AerakiSuffix,
		"ApplicationProtocol//brpc":                     "aeraki.yaml:2" + AerakiSuffix,
	}
	if !reflect.DeepEqual(cfg.Sources, wantSources) {
		t.Errorf("Sources = %q\nwant %q", cfg.Sources, wantSources)
	}

	// Every field arrives: spot-check the deepest ones.
	mr := cfg.MetaRouters[0]
	canary := mr.Spec.Routes[1]
	if canary.Name != "canary" || *canary.Route[1].Weight != 20 || *canary.Match.Attributes["method"].Prefix != "say" ||
		*canary.Timeout != "2s" || canary.Retries.RetryOn[2] != v1alpha1.RetryOnUnavailable || *canary.MirrorPercentage != 10 ||
		canary.ResponseMutation[0].Value != "metamesh" || *mr.Spec.LocalRateLimit.Conditions[0].TokenBucket.TokensPerFill != 10 {
		t.Errorf("MetaRouter decoded wrong: %+v", mr.Spec)
	}
	if ep := cfg.ServiceEntries[0].Spec.Endpoints[1]; ep.Ports["dubbo"] != 20882 || *ep.Weight != 2 || ep.Labels["version"] != "v2" {
		t.Errorf("ServiceEntry endpoint decoded wrong: %+v", ep)
	}
	if dp := cfg.DestinationPolicies[0].Spec; dp.LoadBalancer.HashKey != "user-id" || *dp.OutlierDetection.MaxEjectionPercent != 50 {
		t.Errorf("DestinationPolicy decoded wrong: %+v", dp)
	}
	if ap := cfg.ApplicationProtocols[0]; ap.Spec.Codec != "brpc" {
		t.Errorf("Aeraki ApplicationProtocol codec = %q, want brpc", ap.Spec.Codec)
	}
	if w := cfg.MetaRouters[1].Spec.Routes[0].Route[1].Weight; w == nil || *w != 80 {
		t.Errorf("Aeraki MetaRouter weight = %v, want 80", w)
	}

	// The same objects in other files are the same Config, but for Sources.
	other := t.TempDir()
	writeFiles(t, other, map[string]string{
		"a.yaml": metaRouter(80, 20) + "---\n" + aerakiApplicationProtocol + "---\n" + destinationPolicy,
		"b.yaml": aerakiMetaRouter + "---\n" + applicationProtocol + "---\n" + serviceEntry,
	})
	cfg2, problems := Load(other)
	if len(problems) > 0 {
		t.Fatalf("Load: unexpected problems:\n%v", problems.Err())
	}
	cfg2.Sources = cfg.Sources
	if !reflect.DeepEqual(cfg, cfg2) {
		t.Errorf("the same objects in other files load differently")
	}
}

func TestLoadProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		// want are prefixes of the problems' strings, in order; where the
		// reason is Validate's own, only the location and field are pinned.
		want []string
	}{{
		name:  "empty folder",
		files: map[string]string{},
	}, {
		name:  "only empty documents",
		files: map[string]string{"a.yaml": "---\n# nothing\n---\n", "b.yaml": ""},
	}, {
		name:  "unknown field",
		files: map[string]string{"mr.yaml": strings.Replace(metaRouter(80, 20), "    timeout: 2s\n", "    timeout: 2s\n    timeuot: 3s\n", 1)},
		want:  []string{"mr.yaml:MetaRouter/demo: spec.routes[1].timeuot: unknown field"},
	}, {
		name:  "field names are case-sensitive",
		files: map[string]string{"ap.yaml": strings.Replace(applicationProtocol, "spec:", "Spec:", 1)},
		want: []string{
			"ap.yaml:ApplicationProtocol/my-rpc: Spec: unknown field",
			"ap.yaml:ApplicationProtocol/my-rpc: spec.codec: ",
		},
	}, {
		name:  "weights don't add up to 100",
		files: map[string]string{"mr.yaml": metaRouter(80, 30)},
		want:  []string{"mr.yaml:MetaRouter/demo: spec.routes[1].route: "},
	}, {
		name:  "string match with exact and prefix",
		files: map[string]string{"mr.yaml": strings.Replace(metaRouter(80, 20), `{prefix: "say"}`, `{prefix: "say", exact: sayHello}`, 1)},
		want:  []string{"mr.yaml:MetaRouter/demo: spec.routes[1].match.attributes[method]: "},
	}, {
		name: "several problems in several files, in file order",
		files: map[string]string{
			"b.yaml": metaRouter(10, 10),
			"a.yaml": strings.Replace(destinationPolicy, "CONSISTENT_HASH", "FASTEST", 1),
		},
		want: []string{
			"a.yaml:DestinationPolicy/demo: spec.loadBalancer.policy: ",
			"a.yaml:DestinationPolicy/demo: spec.loadBalancer.hashKey: ",
			"b.yaml:MetaRouter/demo: spec.routes[1].route: ",
		},
	}, {
		name:  "wrong type",
		files: map[string]string{"se.yaml": strings.Replace(serviceEntry, "number: 20880", "number: http", 1)},
		want:  []string{"se.yaml:ServiceEntry/demo: spec.ports.number: cannot unmarshal string into "},
	}, {
		name:  "YAML syntax error",
		files: map[string]string{"a.yaml": serviceEntry + "---\nkind: [\n"},
		want:  []string{"a.yaml: document 2: yaml: line "},
	}, {
		name:  "key set twice",
		files: map[string]string{"a.yaml": serviceEntry + "---\n" + applicationProtocol + "kind: MetaRouter\n"},
		want:  []string{`a.yaml: document 2: yaml: unmarshal errors: line 5: key "kind" already set in map`},
	}, {
		name:  "document that is not an object",
		files: map[string]string{"a.yaml": "- a\n- b\n"},
		want:  []string{"a.yaml: document 1: not an object: want a mapping with apiVersion, kind, metadata and spec"},
	}, {
		name:  "bad document separator",
		files: map[string]string{"a.yaml": serviceEntry + "--- kind: x\n"},
		want:  []string{"a.yaml: document 1: invalid Yaml document separator: kind: x"},
	}, {
		name:  "no apiVersion and kind",
		files: map[string]string{"a.yaml": "metadata: {name: x}\n"},
		want:  []string{"a.yaml: document 1: apiVersion and kind are required"},
	}, {
		name:  "no kind",
		files: map[string]string{"a.yaml": "apiVersion: metamesh.io/v1alpha1\nmetadata: {name: x}\n"},
		want:  []string{"a.yaml: document 1: kind: Required value"},
	}, {
		name:  "no apiVersion",
		files: map[string]string{"a.yaml": "kind: MetaRouter\nmetadata: {name: x}\n"},
		want:  []string{"a.yaml:MetaRouter/x: apiVersion: Required value"},
	}, {
		name: "unknown apiVersion or kind",
		files: map[string]string{"a.yaml": "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\n" +
			"---\napiVersion: metaprotocol.aeraki.io/v1alpha1\nkind: ServiceEntry\nmetadata: {name: se}\n"},
		want: []string{
			"a.yaml:VirtualService/vs: apiVersion: unsupported kind VirtualService in networking.istio.io/v1: want metamesh.io/v1alpha1 ServiceEntry",
			"a.yaml:ServiceEntry/se: apiVersion: unsupported kind ServiceEntry in metaprotocol.aeraki.io/v1alpha1: want ",
		},
	}, {
		name:  "no name",
		files: map[string]string{"a.yaml": strings.Replace(applicationProtocol, "name: my-rpc", "labels: {a: b}", 1)},
		want:  []string{"a.yaml: document 1: ApplicationProtocol: metadata.name: Required value"},
	}, {
		name: "duplicates",
		files: map[string]string{
			"a.yaml": serviceEntry + "---\n" + serviceEntry,
			"b.yaml": metaRouter(80, 20),
			"c.yaml": strings.Replace(aerakiMetaRouter, "name: test-metaprotocol-route\n  namespace: meta-dubbo", "name: demo", 1),
			// Same name in another namespace, or another kind: fine.
			"d.yaml": strings.Replace(metaRouter(80, 20), "{name: demo}", "{name: demo, namespace: other}", 1) +
				"---\n" + strings.Replace(destinationPolicy, "{name: demo}", "{name: demo, namespace: default}", 1),
		},
		want: []string{
			`a.yaml:ServiceEntry/demo: metadata.name: Duplicate value: "default/demo": also defined in a.yaml:1`,
			`c.yaml:MetaRouter/demo: metadata.name: Duplicate value: "default/demo": also defined in b.yaml`,
		},
	}, {
		name: "Aeraki values metamesh can't honour",
		files: map[string]string{"a.yaml": strings.Replace(aerakiMetaRouter, "spec:\n", "spec:\n  globalRateLimit: {domain: production, match: {}, rateLimitService: rls, descriptors: []}\n", 1) +
			"---\n" + strings.Replace(aerakiMetaRouter, "weight: 80", "weight: 81", 1)},
		want: []string{
			`a.yaml:MetaRouter/test-metaprotocol-route: spec.globalRateLimit.rateLimitService: Invalid value: "rls": must be outbound|PORT|SUBSET|HOST or HOST:PORT`,
			"a.yaml:MetaRouter/test-metaprotocol-route: spec.globalRateLimit.descriptors: Required value",
			"a.yaml:MetaRouter/test-metaprotocol-route: spec.routes[0].route: ",
		},
	}, {
		name: "a global rate limit's service no ServiceEntry defines",
		files: map[string]string{"se.yaml": serviceEntry, "mr.yaml": strings.Replace(metaRouter(80, 20), "spec:\n",
			"spec:\n  globalRateLimit: {domain: production, rateLimitService: 'rls.example:8081', descriptors: [{property: method, descriptorKey: method}]}\n", 1)},
		want: []string{"mr.yaml:MetaRouter/demo: spec.globalRateLimit.rateLimitService: no ServiceEntry defines rls.example"},
	}, {
		name:  "Aeraki unknown field",
		files: map[string]string{"a.yaml": strings.Replace(aerakiMetaRouter, "  - name: traffic-split\n", "  - name: traffic-split\n    weight: 3\n", 1)},
		want:  []string{"a.yaml:MetaRouter/test-metaprotocol-route: spec.routes[0].weight: unknown field"},
	}, {
		name: "hidden, temporary and other files are ignored",
		files: map[string]string{
			"ok.yaml":         serviceEntry,
			".#ok.yaml":       "broken: [",
			".ok.yaml.swp":    "broken: [",
			".hidden.yaml":    "broken: [",
			"ok.yaml~":        "broken: [",
			"#ok.yaml#":       "broken: [",
			"notes.txt":       "broken: [",
			"sub/nested.yaml": "broken: [",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			cfg, problems := Load(dir)
			var got []string
			for _, p := range problems {
				got = append(got, p.String())
			}
			ok := len(got) == len(tc.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(got[i], tc.want[i])
			}
			if !ok {
				t.Errorf("problems:\n  %s\nwant prefixes:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if (cfg == nil) != (len(tc.want) > 0) {
				t.Errorf("Load returned config %v with %d problems; want a config exactly when there are none", cfg != nil, len(problems))
			}
			if err := problems.Err(); (err == nil) != (len(problems) == 0) {
				t.Errorf("Err() = %v with %d problems", err, len(problems))
			}
		})
	}
}

func TestLoadDeterministic(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml": metaRouter(1, 1) + "---\n" + serviceEntry + "---\n" + serviceEntry,
		"b.yaml": strings.Replace(destinationPolicy, "5s", "5", -1) + "---\nx: [",
	})
	_, first := Load(dir)
	for range 10 {
		if _, again := Load(dir); !reflect.DeepEqual(first, again) {
			t.Fatalf("Load is not deterministic:\n%v\n---\n%v", first.Err(), again.Err())
		}
	}
}

func TestLoadFollowsSymlinks(t *testing.T) {
	// A Kubernetes ConfigMap volume: files are symlinks into ..data.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"..2026_01_01/se.yaml": serviceEntry})
	if err := os.Symlink("..2026_01_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "se.yaml"), filepath.Join(dir, "se.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg, problems := Load(dir)
	if len(problems) > 0 || len(cfg.ServiceEntries) != 1 {
		t.Fatalf("Load = %v, %v; want the ServiceEntry", cfg, problems.Err())
	}
}

func TestLoadUnreadableFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	cfg, problems := Load(dir)
	if cfg != nil || len(problems) != 1 || problems[0].File != dir || !strings.HasPrefix(problems[0].String(), dir+": open ") {
		t.Fatalf("Load(missing) = %v, %q; want one problem naming the folder", cfg, problems.Err())
	}
}

func TestIsConfigFile(t *testing.T) {
	for name, want := range map[string]bool{
		"a.yaml": true, "a.yml": true, "a.b.yaml": true,
		"a.json": false, "a.yaml~": false, ".a.yaml": false, ".#a.yaml": false,
		".a.yaml.swp": false, "#a.yaml#": false, "a.yaml.tmp": false, "yaml": false,
	} {
		if got := IsConfigFile(name); got != want {
			t.Errorf("IsConfigFile(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestProblemString(t *testing.T) {
	for _, tc := range []struct {
		p    Problem
		want string
	}{
		{Problem{File: "a.yaml", Document: 2, Kind: "MetaRouter", Namespace: "default", Name: "demo", Field: "spec.hosts", Reason: "Required value"},
			"a.yaml:MetaRouter/demo: spec.hosts: Required value"},
		{Problem{File: "a.yaml", Document: 1, Kind: "MetaRouter", Name: "demo", Reason: "something"}, "a.yaml:MetaRouter/demo: something"},
		{Problem{File: "a.yaml", Document: 3, Reason: "yaml: line 1: bad"}, "a.yaml: document 3: yaml: line 1: bad"},
		{Problem{File: "a.yaml", Document: 3, Kind: "MetaRouter", Field: "metadata.name", Reason: "Required value"},
			"a.yaml: document 3: MetaRouter: metadata.name: Required value"},
		{Problem{File: "a.yaml", Reason: "permission denied"}, "a.yaml: permission denied"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
