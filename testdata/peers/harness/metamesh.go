package harness

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

var (
	metameshOnce sync.Once
	metameshDir  string
	metameshBin  string
	metameshErr  error
)

// BuildMetamesh builds the metamesh binary (cmd/metamesh of the main
// module) once per test process and returns its path. CleanupBuilds removes
// it.
func BuildMetamesh(t testing.TB) string {
	t.Helper()
	metameshOnce.Do(func() {
		metameshDir, metameshErr = os.MkdirTemp("", "metamesh-bin-")
		if metameshErr != nil {
			return
		}
		metameshBin = filepath.Join(metameshDir, "metamesh")
		// The main module is three folders above this file (testdata/peers/harness).
		_, self, _, _ := runtime.Caller(0)
		build := exec.Command("go", "build", "-o", metameshBin, "./cmd/metamesh")
		build.Dir = filepath.Join(filepath.Dir(self), "..", "..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			metameshErr = fmt.Errorf("go build metamesh: %v\n%s", err, out)
		}
	})
	if metameshErr != nil {
		t.Fatal(metameshErr)
	}
	return metameshBin
}

func cleanupMetamesh() {
	if metameshDir != "" {
		_ = os.RemoveAll(metameshDir)
	}
}

// Process is a subprocess a test started (a metamesh command).
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
}

// StartProcess runs bin with args until the test ends (then it is
// killed); its stderr is kept for Output and logged if the test failed.
func StartProcess(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, cmd: exec.Command(bin, args...), out: &SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.out
	// A control plane in file mode keeps the root it makes under
	// $XDG_CONFIG_HOME (docs/identity.md): the test's, not the user's.
	p.cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// Kill sends SIGKILL (the process dies without a goodbye) and waits for
// it to exit. It is safe to call more than once.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Output is what the process wrote to stderr so far.
func (p *Process) Output() string { return p.out.String() }
