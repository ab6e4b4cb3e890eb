package cli

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// referencePath is the user-facing reference the tests keep true.
const referencePath = "../docs/reference.md"

// docFlag is one row of a command's flag table in the reference.
type docFlag struct {
	name    string   // the flag, without dashes
	aliases []string // other names given in the same row
	def     string   // the default column when it is one `code` span, else ""
	line    int
}

var (
	commandHeading = regexp.MustCompile("^### `metamesh ([a-z-]+)`")
	flagName       = regexp.MustCompile("`--([a-z0-9-]+)")
	codeSpan       = regexp.MustCompile("^`([^`]*)`$")
)

// referenceFlags parses the flag tables of the reference's "The binary"
// section: per command (a "### `metamesh NAME`" heading), the flags in
// the first column of its table rows.
func referenceFlags(t *testing.T) map[string][]docFlag {
	t.Helper()
	data, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]docFlag{}
	cmd := ""
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			cmd = ""
			if line == "## The binary" {
				cmd = "-" // inside the section, before the first command
			}
		case strings.HasPrefix(line, "### ") && cmd != "":
			m := commandHeading.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("%s:%d: %q: a heading in \"The binary\" must be ### `metamesh COMMAND`", referencePath, i+1, line)
			}
			cmd = m[1]
			out[cmd] = []docFlag{}
		case cmd != "" && cmd != "-" && strings.HasPrefix(line, "| `--"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			if len(cells) < 3 {
				t.Fatalf("%s:%d: a flag row has flag, default and description columns", referencePath, i+1)
			}
			names := flagName.FindAllStringSubmatch(cells[0], -1)
			f := docFlag{name: names[0][1], line: i + 1}
			for _, n := range names[1:] {
				f.aliases = append(f.aliases, n[1])
			}
			if m := codeSpan.FindStringSubmatch(strings.TrimSpace(cells[1])); m != nil {
				f.def = m[1]
			}
			out[cmd] = append(out[cmd], f)
		}
	}
	return out
}

// TestReferenceFlags: docs/reference.md lists every subcommand and every
// flag of each, and each flag it lists (aliases too) is accepted by its
// command, with the default it shows.
func TestReferenceFlags(t *testing.T) {
	doc := referenceFlags(t)
	commands := map[string]*cobra.Command{}
	for _, c := range Root().Commands() {
		commands[c.Name()] = c
	}
	var undocumented []string
	for name, c := range commands {
		flags, ok := doc[name]
		if !ok {
			t.Errorf("%s has no section \"### `metamesh %s`\" under \"## The binary\" for the command %q", referencePath, name, name)
			continue
		}
		listed := map[string]bool{}
		for _, f := range flags {
			listed[f.name] = true
			got := c.Flags().Lookup(f.name)
			switch {
			case got == nil || got.Name != f.name:
				t.Errorf("%s:%d: `metamesh %s` has no flag --%s", referencePath, f.line, name, f.name)
				continue
			case f.def != "" && f.def != got.DefValue:
				t.Errorf("%s:%d: `metamesh %s --%s` defaults to %q, the reference says %q", referencePath, f.line, name, f.name, got.DefValue, f.def)
			}
			for _, a := range f.aliases {
				if alias := c.Flags().Lookup(a); alias == nil || alias.Name != f.name {
					t.Errorf("%s:%d: `metamesh %s` does not take --%s for --%s", referencePath, f.line, name, a, f.name)
				}
			}
		}
		var missing []string
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !listed[f.Name] {
				missing = append(missing, "--"+f.Name)
			}
		})
		if len(missing) > 0 {
			sort.Strings(missing)
			undocumented = append(undocumented, "metamesh "+name+": "+strings.Join(missing, ", "))
		}
	}
	for name := range doc {
		if commands[name] == nil {
			t.Errorf("%s documents `metamesh %s`, which is not a command", referencePath, name)
		}
	}
	if len(undocumented) > 0 {
		sort.Strings(undocumented)
		t.Errorf("flags missing from %s (add a row to the command's table: | `--flag VALUE` | default | what it does |):\n\t%s",
			referencePath, strings.Join(undocumented, "\n\t"))
	}
}
