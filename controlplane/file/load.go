// Package file is the file-mode config source: it loads every YAML file in a
// folder (multi-document files allowed), validates each object as the API
// server would, and watches the folder, applying each valid change and
// keeping the last good config in force when an edit is invalid.
package file

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/metamesh/metamesh/controlplane/translate"
	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// Config is every object of a config folder, valid and converted to
// metamesh's kinds. Each list is in (namespace, name) order, so the same
// objects give the same Config whichever files hold them. Treat it as
// read-only: the watcher compares it with the next one.
type Config struct {
	ServiceEntries       []*v1alpha1.ServiceEntry
	DestinationPolicies  []*v1alpha1.DestinationPolicy
	MetaRouters          []*v1alpha1.MetaRouter
	ApplicationProtocols []*v1alpha1.ApplicationProtocol
	Sidecars             []*v1alpha1.Sidecar
	// AuthorizationPolicies include Aeraki's DubboAuthorizationPolicies,
	// converted.
	AuthorizationPolicies []*v1alpha1.AuthorizationPolicy

	// Sources maps each object's Key to where it was read: "file" when the
	// file holds just that object, else "file:N" with N the 1-based document
	// number. Objects read from Aeraki's apiVersions have AerakiSuffix or
	// AerakiDubboSuffix appended.
	Sources map[string]string
}

// AerakiDubboSuffix ends the Sources entry of an object that was written
// as Aeraki's dubbo.aeraki.io/v1alpha1 and converted.
const AerakiDubboSuffix = " (dubbo.aeraki.io/v1alpha1)"

// SourceFile is a Sources entry without the suffix of a converted object.
func SourceFile(source string) string {
	return strings.TrimSuffix(strings.TrimSuffix(source, AerakiSuffix), AerakiDubboSuffix)
}

// AerakiSuffix ends the Sources entry of an object that was written as
// Aeraki's metaprotocol.aeraki.io/v1alpha1 and converted.
const AerakiSuffix = " (metaprotocol.aeraki.io/v1alpha1)"

// Key names an object in Config.Sources: "Kind/namespace/name", with an empty
// namespace for cluster-scoped kinds (the same keys as translate.Key).
func Key(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// IsConfigFile reports whether a file name in a config folder is read: *.yaml
// and *.yml, except hidden files (editor locks and swap files such as .#a.yaml
// and .a.yaml.swp). Editor backups (a.yaml~, #a.yaml#) don't end in .yaml.
func IsConfigFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// Load reads every config file in dir (not its subfolders) and returns the
// objects, or, when anything is wrong, nil and every problem found. A folder
// that can't be read is one problem naming it. Two objects that conflict
// (the same key, or a host, port, policy, router or protocol name claimed
// twice) are a problem on the newer one: see age.
func Load(dir string) (*Config, Problems) {
	cfg, ps, err := load(dir, nil)
	if err != nil {
		return nil, Problems{{File: dir, Reason: err.Error()}}
	}
	return cfg, ps
}

// load is Load with an unreadable folder kept apart, which the watcher
// treats as fatal at start, and with the config in force, prev (or nil),
// whose objects are older than the ones an edit adds or changes.
func load(dir string, prev *Config) (*Config, Problems, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	l := &loader{cfg: &Config{Sources: map[string]string{}}, modTimes: map[string]time.Time{}}
	for _, e := range entries {
		name := e.Name()
		if !IsConfigFile(name) {
			continue
		}
		path := filepath.Join(dir, name)
		// Stat, not e.Info: follow symlinks (a Kubernetes ConfigMap volume
		// is a folder of symlinks), and skip folders named x.yaml.
		info, err := os.Stat(path)
		if err == nil && !info.Mode().IsRegular() {
			continue
		}
		var data []byte
		if err == nil {
			data, err = l.readCapped(path, info.Size()) // caps.go
		}
		if err != nil {
			l.problems = append(l.problems, Problem{File: name, Reason: err.Error()})
			continue
		}
		l.modTimes[name] = info.ModTime()
		l.file(name, data)
	}
	l.settle(prev)
	if len(l.problems) > 0 {
		l.problems.sort()
		l.refused()
		return nil, l.problems, nil
	}
	sortObjects(l.cfg.ServiceEntries)
	sortObjects(l.cfg.DestinationPolicies)
	sortObjects(l.cfg.MetaRouters)
	sortObjects(l.cfg.ApplicationProtocols)
	sortObjects(l.cfg.AuthorizationPolicies)
	sortObjects(l.cfg.Sidecars)
	return l.cfg, nil, nil
}

// Input is the translator's input: every object of c.
func (c *Config) Input() *translate.Input {
	return &translate.Input{
		ServiceEntries:        c.ServiceEntries,
		DestinationPolicies:   c.DestinationPolicies,
		MetaRouters:           c.MetaRouters,
		ApplicationProtocols:  c.ApplicationProtocols,
		Sidecars:              c.Sidecars,
		AuthorizationPolicies: c.AuthorizationPolicies,
	}
}

func sortObjects[T metav1.Object](objs []T) {
	slices.SortFunc(objs, func(a, b T) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
}

// loader accumulates one Load.
type loader struct {
	cfg      *Config
	problems Problems
	defs     []*definition
	modTimes map[string]time.Time // by file name
	budget                        // what the folder used of its caps (caps.go)
}

// document is one YAML document of a file, converted to JSON.
type document struct {
	file   string
	n      int    // 1-based
	source string // Sources entry for its object
	json   []byte
	head   header
}

// header is what every document must have to be dispatched.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// file splits data into documents and decodes each.
func (l *loader) file(name string, data []byte) {
	r := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []*document
	for n := 1; ; n++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			l.problems = append(l.problems, Problem{File: name, Document: n, Reason: err.Error()})
			break
		}
		if d := l.parse(name, n, raw); d != nil {
			docs = append(docs, d)
		}
	}
	for _, d := range docs {
		d.source = name
		if len(docs) > 1 {
			d.source += ":" + strconv.Itoa(d.n)
		}
		l.decode(d)
	}
}

// parse converts one document to JSON and reads its header; it returns nil
// for an empty document (only comments, or nothing) and for one that is not
// an object, which it reports.
func (l *loader) parse(file string, n int, raw []byte) *document {
	fail := func(reason string) *document {
		l.problems = append(l.problems, Problem{File: file, Document: n, Reason: oneLine(reason)})
		return nil
	}
	// Strict: a key set twice in one mapping is an error, not "last wins".
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return fail(strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || string(js) == "null" {
		return nil
	}
	if js[0] != '{' {
		return fail("not an object: want a mapping with apiVersion, kind, metadata and spec")
	}
	d := &document{file: file, n: n, json: js}
	if err := unmarshalHeader(js, &d.head); err != nil {
		return fail(err.Error())
	}
	switch {
	case d.head.Kind == "" && d.head.APIVersion == "":
		return fail("apiVersion and kind are required")
	case d.head.Kind == "":
		l.problems = append(l.problems, Problem{File: file, Document: n, Field: "kind", Reason: "Required value"})
		return nil
	}
	return d
}

// Interface guards: the kinds Load decodes are objects with a Validate.
var (
	_ validated     = (*v1alpha1.ServiceEntry)(nil)
	_ validated     = (*v1alpha1.DestinationPolicy)(nil)
	_ validated     = (*v1alpha1.MetaRouter)(nil)
	_ validated     = (*v1alpha1.ApplicationProtocol)(nil)
	_ validated     = (*v1alpha1.Sidecar)(nil)
	_ metav1.Object = (*aeraki.MetaRouter)(nil)
	_ metav1.Object = (*aeraki.ApplicationProtocol)(nil)
)
