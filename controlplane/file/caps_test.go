package file

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"
)

// tiny is a valid object, a few bytes long: one of many.
func tiny(i int) string {
	return fmt.Sprintf("apiVersion: metamesh.io/v1alpha1\nkind: ApplicationProtocol\nmetadata: {name: p%d}\nspec: {codec: dubbo}\n", i)
}

// filler is a YAML file of n bytes of comments.
func filler(n int) string {
	line := "# " + strings.Repeat("x", 77) + "\n"
	return strings.Repeat(line, n/len(line)+1)[:n]
}

// Each cap refuses the folder with a problem naming the file (and the
// object and field, when it got that far).
func TestLoadCaps(t *testing.T) {
	many := make([]string, MaxObjects+1)
	for i := range many {
		many[i] = tiny(i)
	}
	folder := map[string]string{}
	for i := range MaxFolderBytes/MaxFileBytes + 1 {
		folder[fmt.Sprintf("f%02d.yaml", i)] = filler(MaxFileBytes)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string // prefixes of the problems, in order
	}{{
		name:  "file at the cap",
		files: map[string]string{"se.yaml": serviceEntry + filler(MaxFileBytes-len(serviceEntry))},
	}, {
		name:  "file over the cap",
		files: map[string]string{"se.yaml": serviceEntry + filler(MaxFileBytes+1-len(serviceEntry))},
		want:  []string{"se.yaml: file too large: 3145729 bytes, the limit is 3145728"},
	}, {
		name:  "folder over the cap",
		files: folder,
		want:  []string{fmt.Sprintf("f%02d.yaml: file not read: the folder's files together exceed", MaxFolderBytes/MaxFileBytes)},
	}, {
		name:  "objects at the cap",
		files: map[string]string{"many.yaml": strings.Join(many[:MaxObjects], "---\n")},
	}, {
		name:  "objects over the cap",
		files: map[string]string{"many.yaml": strings.Join(many, "---\n")},
		want:  []string{"many.yaml:ApplicationProtocol/p10000: too many objects: the folder holds more than 10000"},
	}, {
		name:  "label value of 63",
		files: map[string]string{"se.yaml": strings.Replace(serviceEntry, "{version: v1}", "{version: "+strings.Repeat("a", 63)+"}", 1)},
	}, {
		name:  "endpoint label value of 64",
		files: map[string]string{"se.yaml": strings.Replace(serviceEntry, "{version: v1}", "{version: "+strings.Repeat("a", 64)+"}", 1)},
		want:  []string{"se.yaml:ServiceEntry/demo: spec.endpoints[0].labels[version]: Too long: may not be more than 63 bytes"},
	}, {
		name:  "endpoint label value of 1 MB",
		files: map[string]string{"se.yaml": strings.Replace(serviceEntry, "{version: v1}", "{version: "+strings.Repeat("a", 1<<20)+"}", 1)},
		want:  []string{"se.yaml:ServiceEntry/demo: spec.endpoints[0].labels[version]: Too long: may not be more than 63 bytes"},
	}, {
		name:  "metadata label value with a space",
		files: map[string]string{"se.yaml": strings.Replace(serviceEntry, "namespace: default}", "namespace: default, labels: {team: a b}}", 1)},
		want:  []string{`se.yaml:ServiceEntry/demo: metadata.labels[team]: Invalid value: "a b": `},
	}, {
		name:  "subset label key",
		files: map[string]string{"dp.yaml": strings.Replace(destinationPolicy, "{version: v2}", "{-version: v2}", 1)},
		want:  []string{`dp.yaml:DestinationPolicy/demo: spec.subsets[1].labels[-version]: Invalid value: "-version": key: `},
	}, {
		name:  "annotations over 256 KiB",
		files: map[string]string{"ap.yaml": strings.Replace(applicationProtocol, "{name: my-rpc}", "{name: my-rpc, annotations: {note: "+strings.Repeat("n", 256<<10)+"}}", 1)},
		want:  []string{"ap.yaml:ApplicationProtocol/my-rpc: metadata.annotations: Too long: may not be more than 262144 bytes"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			cfg, problems := Load(dir)
			if len(problems) != len(tc.want) {
				t.Fatalf("problems %q, want %d starting %q", problems, len(tc.want), tc.want)
			}
			for i, p := range problems {
				if s := p.String(); !strings.HasPrefix(s, tc.want[i]) || len(s) > 1000 {
					t.Errorf("problem %d: %.1000q, want a short one starting %q", i, s, tc.want[i])
				}
			}
			if (cfg == nil) != (len(tc.want) > 0) {
				t.Errorf("config %v with %d problems", cfg != nil, len(problems))
			}
		})
	}
}

// An edit over a cap is refused with the file named and the last good
// config stays in force.
func TestWatchOverCapKeepsLastGood(t *testing.T) {
	x := watch(t, map[string]string{"se.yaml": serviceEntry})
	x.waitApplies(1)
	good := x.last()
	x.write("se.yaml", serviceEntry+filler(MaxFileBytes))
	x.waitFor("the refused reload", func() bool { return x.w.Stats().Invalid == 1 })
	if n := x.applies(); n != 1 || x.last() != good {
		t.Fatalf("apply called %d times after an over-cap edit, want 1 (the initial one)", n)
	}
	problems := x.logs.FilterMessage("config problem").All()
	if len(problems) != 1 || problems[0].Level != zapcore.WarnLevel ||
		!strings.HasPrefix(problems[0].ContextMap()["problem"].(string), "se.yaml: file too large: ") {
		t.Errorf("want one warning naming the file, got %+v", problems)
	}
}

// The memory a refused load used is handed back. Reported, not asserted:
// the figures depend on the runtime.
func TestRefusedLoadMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("skipped under -race: the detector's shadow memory swamps the figures, and the load takes 40 s")
	}
	dir := t.TempDir()
	// Each file near the cap, of objects that decode to much more than
	// their YAML; the last file holds an invalid object.
	ep := "  - {address: 127.0.0.1, ports: {dubbo: 20881}, labels: {version: v1, zone: a, rack: r1}}\n"
	files := map[string]string{}
	for f := range 5 {
		var b strings.Builder
		for i := 0; b.Len() < MaxFileBytes-200<<10; i++ {
			fmt.Fprintf(&b, "---\napiVersion: metamesh.io/v1alpha1\nkind: ServiceEntry\nmetadata: {name: s%d-%d}\nspec:\n  hosts: [h%d-%d.example]\n  ports: [{number: 20880, name: dubbo, protocol: dubbo}]\n  endpoints:\n%s",
				f, i, f, i, strings.Repeat(ep, 1000))
		}
		files[fmt.Sprintf("f%d.yaml", f)] = b.String()
	}
	files["z.yaml"] = strings.Replace(serviceEntry, "{version: v1}", "{version: "+strings.Repeat("a", 64)+"}", 1)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files = nil
	var before, after runtime.MemStats
	debug.FreeOSMemory()
	runtime.ReadMemStats(&before)
	cfg, problems := Load(dir)
	runtime.ReadMemStats(&after)
	if cfg != nil || len(problems) != 1 {
		t.Fatalf("config %v, problems %q; want the folder refused", cfg != nil, problems)
	}
	t.Logf("refused load of %d MiB: heap in use %d → %d MiB, held from the OS (heap sys - released) %d → %d MiB, peak heap sys %d MiB",
		5*MaxFileBytes>>20, before.HeapInuse>>20, after.HeapInuse>>20,
		(before.HeapSys-before.HeapReleased)>>20, (after.HeapSys-after.HeapReleased)>>20, after.HeapSys>>20)
}
