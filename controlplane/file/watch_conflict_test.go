package file

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"
)

// TestWatchConflictingEditRefused: an edit that adds an object conflicting
// with one in force is refused whole (the valid object added with it is
// not applied either), the last good config stays, and the log names the
// new file, even when that file's modification time is the older one (as
// after `cp -p`): what is in force is older than what an edit brings.
func TestWatchConflictingEditRefused(t *testing.T) {
	x := watch(t, map[string]string{"se.yaml": serviceEntry, "mr.yaml": metaRouter(80, 20)})
	x.waitApplies(1)
	good := x.last()

	// broken.yaml: a valid DestinationPolicy, and a MetaRouter for the host
	// mr.yaml routes; its modification time is years before mr.yaml's.
	broken := destinationPolicy + "---\n" + conflictRouter("broken", "org.apache.dubbo.samples.api.GreetingsService")
	staging := t.TempDir()
	writeFile(t, staging, "broken.yaml", broken, written.AddDate(-10, 0, 0))
	if err := os.Rename(filepath.Join(staging, "broken.yaml"), filepath.Join(x.dir, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	x.waitFor("the refused edit", func() bool { return x.w.Stats().Invalid == 1 })
	if n := x.applies(); n != 1 || x.last() != good {
		t.Fatalf("apply called %d times; want only the initial config in force", n)
	}
	problems := x.logs.FilterMessage("config problem").All()
	want := "broken.yaml:MetaRouter/broken: spec.hosts[0]: org.apache.dubbo.samples.api.GreetingsService is already routed by MetaRouter default/demo, in mr.yaml"
	if len(problems) != 1 || problems[0].Level != zapcore.WarnLevel || problems[0].ContextMap()["problem"] != want ||
		problems[0].ContextMap()["file"] != "broken.yaml" {
		var got []string
		for _, p := range problems {
			got = append(got, p.ContextMap()["problem"].(string))
		}
		t.Errorf("config problems logged:\n%s\nwant only:\n%s", strings.Join(got, "\n"), want)
	}
	if x.logs.FilterMessage("config rejected; the last good config stays in force").Len() != 1 {
		t.Errorf("want the rejection logged")
	}

	// Without the new file, the folder is the config in force again.
	if err := os.Remove(filepath.Join(x.dir, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	x.waitFor("the unchanged reload", func() bool { return x.w.Stats().Unchanged == 1 })
	if got, want := x.w.Stats(), (Stats{OK: 1, Invalid: 1, Unchanged: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}
