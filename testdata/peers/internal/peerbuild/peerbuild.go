// Package peerbuild builds this module's commands once per process into a
// temporary directory, for tests that run them as subprocesses.
package peerbuild

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"sync"
)

// ModulePath is this module's path.
const ModulePath = "github.com/metamesh/metamesh/testdata/peers"

var (
	mu     sync.Mutex // held for the whole of a build
	dir    string
	built  = map[string]string{} // package -> binary
	failed = map[string]error{}
	wanted = map[string]bool{}
)

// Want registers pkg to be built together with the next Build, so that
// the binaries a process will need are linked by one `go build` (in
// parallel) rather than one after the other.
func Want(pkg string) {
	mu.Lock()
	defer mu.Unlock()
	wanted[pkg] = true
}

// Build runs `go build` (without -race, whatever the caller was built with)
// for the command pkg of this module, once per process, and returns the
// binary's path.
func Build(pkg string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[pkg]; ok {
		return p, nil
	}
	if err, ok := failed[pkg]; ok {
		return "", err
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "metamesh-peers-")
		if err != nil {
			return "", err
		}
		dir = d
	}
	pkgs := []string{pkg}
	for w := range wanted {
		if _, ok := built[w]; !ok && w != pkg {
			pkgs = append(pkgs, w)
		}
	}
	sort.Strings(pkgs[1:])
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Dir = ModuleDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		err = fmt.Errorf("go build %v: %v\n%s", pkgs, err, out)
		for _, p := range pkgs {
			failed[p] = err
		}
		return "", err
	}
	for _, p := range pkgs {
		built[p] = filepath.Join(dir, path.Base(p))
		delete(wanted, p)
	}
	return built[pkg], nil
}

// Cleanup removes the directory holding the binaries. Call it from TestMain
// after m.Run, when no binary is needed any more.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir = ""
		built = map[string]string{}
		failed = map[string]error{}
	}
}

// ModuleDir returns this module's root directory: go test runs a package's
// tests in the package's directory, so it walks up from the working
// directory to the go.mod declaring ModulePath.
func ModuleDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			bytes.Contains(b, []byte("module "+ModulePath+"\n")) {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}
