package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/translate"
)

func validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate DIR",
		Short: "Check every YAML in DIR; print each problem as file:kind/name: field: reason",
		Long: "validate applies, offline, the checks metamesh run and the API server\n" +
			"apply: each object's schema and rules, conflicts, then the translation\n" +
			"(unknown hosts and subsets). A ServiceEntry without endpoints is noted:\n" +
			"with --registry, run and controlplane take them from a Dubbo registry,\n" +
			"which validate does not contact. Of two conflicting objects the newer is\n" +
			"named: by metadata.creationTimestamp when written, else by its file's\n" +
			"modification time, else by namespace/name. It exits 1 if there is any\n" +
			"problem.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, problems := file.Load(args[0])
			lines := make([]string, 0, len(problems))
			for _, p := range problems {
				lines = append(lines, p.String())
			}
			if cfg != nil && len(problems) == 0 {
				out := translate.Translate(&translate.Input{
					ServiceEntries:       cfg.ServiceEntries,
					DestinationPolicies:  cfg.DestinationPolicies,
					MetaRouters:          cfg.MetaRouters,
					ApplicationProtocols: cfg.ApplicationProtocols,
				}, translate.Options{KnownCodec: knownCodec})
				lines = append(lines, conditionProblems(out, cfg)...)
			}
			for _, l := range lines {
				fmt.Fprintln(cmd.OutOrStdout(), l)
			}
			if cfg != nil {
				for _, n := range registryNotes(cfg) {
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
			src := strings.TrimSuffix(cfg.Sources[key], file.AerakiSuffix)
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
				"take them from the Dubbo registry, which validate does not contact", strings.TrimSuffix(cfg.Sources[key], file.AerakiSuffix), kindName(key)))
		}
	}
	sort.Strings(notes)
	return notes
}
