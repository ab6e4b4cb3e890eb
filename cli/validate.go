package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/registry"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

func validateCmd() *cobra.Command {
	var (
		regs        []string
		captureOnly bool
		rootNS      string
	)
	cmd := &cobra.Command{
		Use:   "validate DIR",
		Short: "Check every YAML in DIR; print each problem as file:kind/name: field: reason",
		Long: "validate applies, offline, the checks metamesh run and the API server\n" +
			"apply: each object's schema and rules, conflicts, then the translation\n" +
			"(unknown hosts and subsets). A ServiceEntry without endpoints is noted:\n" +
			"with --registry, run and controlplane take them from a Dubbo registry,\n" +
			"which validate does not contact. Of two conflicting objects the newer is\n" +
			"named: by metadata.creationTimestamp when written, else by its file's\n" +
			"modification time, else by namespace/name. It exits 1 if there is any\n" +
			"problem.\n\n" +
			"With --registry (the URLs given to run), a host that MetaRouters or\n" +
			"DestinationPolicies name and no ServiceEntry defines is taken as one a\n" +
			"registry provides, as run would make it: a note, not an unknown host.\n" +
			"validate checks the URLs but does not contact the registries, so it\n" +
			"can't tell whether any provider registers that interface.\n\n" +
			"With --capture-only, the config is checked as controlplane\n" +
			"--capture-only and a capturing run serve it to sidecars: Thrift or\n" +
			"Redis services at addresses of their own may share a port number.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			port := dubboPort
			for _, u := range regs {
				t, err := registry.ParseTarget(u)
				if err != nil {
					return fmt.Errorf("--registry: %w", err)
				}
				if t.Port != 0 && port == dubboPort {
					port = t.Port
				}
			}
			load := file.Load
			if captureOnly {
				load = file.LoadCaptureOnly
			}
			cfg, problems := load(args[0])
			lines := make([]string, 0, len(problems))
			for _, p := range problems {
				lines = append(lines, p.String())
			}
			var notes []string
			if cfg != nil && len(problems) == 0 {
				in := cfg.Input()
				if len(regs) > 0 {
					notes = assumeRegistryHosts(in, cfg, strings.Join(regs, ","), port)
				}
				out := translate.Translate(in, translate.Options{KnownCodec: knownCodec, CaptureOnly: captureOnly, RootNamespace: rootNS})
				lines = append(lines, conditionProblems(out, cfg)...)
			}
			for _, l := range lines {
				fmt.Fprintln(cmd.OutOrStdout(), l)
			}
			if cfg != nil {
				for _, n := range append(registryNotes(cfg), notes...) {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
			}
			if len(lines) > 0 {
				return fmt.Errorf("%d problem(s) in %s", len(lines), args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&captureOnly, "capture-only", false, "check as controlplane --capture-only translates (sidecars): Thrift or Redis services at addresses of their own may share a port number")
	cmd.Flags().StringVar(&rootNS, "root-namespace", v1alpha1.RootNamespace, "check as run and controlplane with this --root-namespace translate")
	cmd.Flags().StringArrayVar(&regs, "registry", nil, "the --registry URLs run is given: hosts no ServiceEntry defines are taken as provided by them "+
		"(a note, not a problem); they are not contacted (repeatable)")
	return cmd
}

// dubboPort is the port of the ServiceEntries validate assumes a registry
// provides when no --registry URL sets ?port=: Dubbo's default.
const dubboPort = 20880

// assumeRegistryHosts adds to in, for each host that a MetaRouter or
// DestinationPolicy names and no ServiceEntry defines, the ServiceEntry
// run makes for an interface of the registries (regs, for its source):
// registry.MadeName(host) in registry.MadeNamespace, port dubbo on port,
// without endpoints. It returns a note for each, sorted.
func assumeRegistryHosts(in *translate.Input, cfg *file.Config, regs string, port int) []string {
	defined := map[string]bool{}
	for _, se := range in.ServiceEntries {
		for _, h := range se.Spec.Hosts {
			defined[string(h)] = true
		}
	}
	users := map[string][]string{}
	use := func(h v1alpha1.Host, key string) {
		if h != "" && !defined[string(h)] {
			for _, k := range users[string(h)] {
				if k == key {
					return
				}
			}
			users[string(h)] = append(users[string(h)], key)
		}
	}
	for _, dp := range in.DestinationPolicies {
		use(dp.Spec.Host, translate.Key("DestinationPolicy", dp.Namespace, dp.Name))
	}
	for _, mr := range in.MetaRouters {
		key := translate.Key("MetaRouter", mr.Namespace, mr.Name)
		for _, h := range mr.Spec.Hosts {
			use(h, key)
		}
		for _, r := range mr.Spec.Routes {
			for _, d := range r.Route {
				use(d.Destination.Host, key)
			}
			if r.Mirror != nil {
				use(r.Mirror.Host, key)
			}
		}
	}
	hosts := make([]string, 0, len(users))
	for h := range users {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	ses := make([]*v1alpha1.ServiceEntry, 0, len(in.ServiceEntries)+len(hosts))
	ses = append(ses, in.ServiceEntries...)
	notes := make([]string, 0, len(hosts))
	for _, h := range hosts {
		se := &v1alpha1.ServiceEntry{
			ObjectMeta: metav1.ObjectMeta{Name: registry.MadeName(h), Namespace: registry.MadeNamespace},
			Spec: v1alpha1.ServiceEntrySpec{
				Hosts: []v1alpha1.Host{v1alpha1.Host(h)},
				Ports: []v1alpha1.ServicePort{{Number: v1alpha1.PortNumber(port), Name: "dubbo", Protocol: "dubbo"}},
			},
		}
		ses = append(ses, se)
		cfg.Sources[translate.Key("ServiceEntry", se.Namespace, se.Name)] = "registry " + regs
		named := make([]string, len(users[h]))
		for i, k := range users[h] {
			named[i] = kindName(k)
		}
		sort.Strings(named)
		notes = append(notes, fmt.Sprintf("note: %s (named by %s): no ServiceEntry defines it; taken as provided by the registry (%s), "+
			"which validate does not contact: if no provider registers it there, run reports it unknown", h, strings.Join(named, ", "), regs))
	}
	in.ServiceEntries = ses
	return notes
}

// conditionProblems lists every condition that is not True, as
// "source:Kind/name: message", sorted.
func conditionProblems(out *translate.Output, cfg *file.Config) []string {
	var lines []string
	for key, conds := range out.Status {
		for _, c := range conds {
			if c.Status == metav1.ConditionTrue {
				continue
			}
			src := file.SourceFile(cfg.Sources[key])
			lines = append(lines, fmt.Sprintf("%s:%s: %s (%s)", src, kindName(key), c.Message, c.Reason))
		}
	}
	sort.Strings(lines)
	return lines
}

// kindName turns a "Kind/namespace/name" key into "Kind/name".
func kindName(key string) string {
	kind, rest, _ := strings.Cut(key, "/")
	_, name, _ := strings.Cut(rest, "/")
	return kind + "/" + name
}

// registryNotes are the notes (not problems) on ServiceEntries that rely
// on a registry for their endpoints, which validate can't see.
func registryNotes(cfg *file.Config) []string {
	var notes []string
	for _, se := range cfg.ServiceEntries {
		if len(se.Spec.Endpoints) == 0 {
			key := translate.Key("ServiceEntry", se.Namespace, se.Name)
			notes = append(notes, fmt.Sprintf("note: %s:%s: no endpoints: with --registry, `metamesh run` and `metamesh controlplane` "+
				"take them from the Dubbo registry, which validate does not contact", file.SourceFile(cfg.Sources[key]), kindName(key)))
		}
	}
	sort.Strings(notes)
	return notes
}
