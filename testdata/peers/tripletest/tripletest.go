// Package tripletest runs cmd/triple-peer, a real dubbo-go v3.3.0 Triple
// provider or consumer, as a subprocess for metamesh's Triple interop
// tests (built without -race: dubbo-go has races of its own).
package tripletest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/internal/peerbuild"
)

// Package is the import path of the peer command.
const Package = peerbuild.ModulePath + "/cmd/triple-peer"

// Interface is the interface the provider serves by default.
const Interface = "org.apache.dubbo.samples.triple.Greeter"

func binary(t testing.TB) string {
	t.Helper()
	p, err := peerbuild.Build(Package)
	if err != nil {
		t.Fatalf("tripletest: %v", err)
	}
	return p
}

// StartProvider starts a provider whose replies are labelled version on a
// free 127.0.0.1 port, and returns its address once it accepts
// connections; t.Cleanup kills it.
func StartProvider(t testing.TB, version string) string {
	t.Helper()
	addr := harness.FreeAddr(t)
	cmd := exec.Command(binary(t), "serve", "--addr", addr, "--version", version)
	out := &harness.SyncBuffer{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("triple provider %s (%s) output:\n%s", version, addr, out.String())
		}
	})
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("triple provider %s exited before ready:\n%s", version, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("triple provider %s not ready after 60s:\n%s", version, out.String())
	}
	return addr
}

// Calls is one consumer run: N calls of Method(Arg) (Arg-i when N > 1), C
// at a time, with Attach sent as attachments (Triple request headers).
type Calls struct {
	Addr, Interface, Method, Arg string
	N, C                         int
	Attach                       map[string]string
}

// Result is what a consumer run saw.
type Result struct {
	Replies map[string]int `json:"replies"` // by the reply's version label
	Sample  string         `json:"sample"`
	Failed  int            `json:"failed"`
	Errors  []string       `json:"errors"`
}

// Run makes the calls with a real dubbo-go consumer.
func Run(t testing.TB, c Calls) Result {
	t.Helper()
	args := []string{"call", "--addr", c.Addr, "--method", c.Method, "--arg", c.Arg,
		"--n", strconv.Itoa(max(c.N, 1)), "--c", strconv.Itoa(max(c.C, 1))}
	if c.Interface != "" {
		args = append(args, "--interface", c.Interface)
	}
	for k, v := range c.Attach {
		args = append(args, "--attach", k+"="+v)
	}
	return run(t, args)
}

// run runs the peer command with args and reads its result line.
func run(t testing.TB, args []string) Result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("triple consumer %v: %v\n%s", args, err, stderr.String())
	}
	// dubbo-go logs to stdout too: the result is the last line.
	lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
	var r Result
	if err := json.Unmarshal(lines[len(lines)-1], &r); err != nil {
		t.Fatalf("triple consumer output %q: %v", stdout.String(), err)
	}
	return r
}

// Echo runs a real dubbo-go consumer's bidirectional Echo stream to addr:
// n messages of size bytes, the answers read slowly.
func Echo(t testing.TB, addr string, n, size int) Result {
	t.Helper()
	return run(t, []string{"echo", "--addr", addr, "--n", strconv.Itoa(n), "--size", strconv.Itoa(size)})
}

// String is a short form of r for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("replies %v, failed %d, errors %q", r.Replies, r.Failed, r.Errors)
}
