package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a process the bench started: the greeter-server or the proxy.
// Its stdout and stderr go to a log file in the run's temp dir, shown when
// something fails.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	ready   chan string   // the first stdout line starting with readyPrefix
	exited  chan struct{} // closed when the process has been reaped
	waitErr error
	admin   string // a proxy's admin address, for its ring enters (ringEnters)
}

// startChild starts path with args in its own process group (so a
// terminal's Ctrl-C reaches only the bench, which then stops it), killed
// by the kernel if the bench dies first. readyPrefix, if not empty, is the
// stdout line waitReady waits for.
func startChild(name, dir, readyPrefix, path string, args ...string) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, ready: make(chan string, 1), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if readyPrefix != "" && strings.HasPrefix(sc.Text(), readyPrefix) {
				c.ready <- sc.Text()
				readyPrefix = ""
			}
		}
		_, _ = io.Copy(logf, stdout) // a line too long for the scanner
		c.waitErr = cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	return c, nil
}

// waitReady waits for the ready line and returns it.
func (c *child) waitReady(ctx context.Context, timeout time.Duration) (string, error) {
	select {
	case l := <-c.ready:
		return l, nil
	case <-c.exited:
		return "", fmt.Errorf("%s exited before it was ready: %v%s", c.name, c.waitErr, c.logTail())
	case <-time.After(timeout):
		return "", fmt.Errorf("%s not ready within %s%s", c.name, timeout, c.logTail())
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// waitDial waits until addr accepts a TCP connection.
func (c *child) waitDial(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited before %s accepted connections: %v%s", c.name, addr, c.waitErr, c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not accepting after %s: %v%s", c.name, addr, timeout, err, c.logTail())
		}
	}
}

// alive reports whether the process is still running.
func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, and SIGKILL to the process group after grace.
func (c *child) stop(grace time.Duration) {
	if !c.alive() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
}

// logTail is the end of the child's log, for error messages.
func (c *child) logTail() string {
	data, err := os.ReadFile(c.logPath)
	if err != nil || len(data) == 0 {
		return ""
	}
	const keep = 2000
	if len(data) > keep {
		data = data[len(data)-keep:]
	}
	return fmt.Sprintf("\n--- end of %s log ---\n%s", c.name, data)
}

// userHZ is the unit of the CPU times in /proc/PID/stat. Linux fixes it
// at 100 for user space on every architecture Go supports.
const userHZ = 100

// cpuSeconds is the user+system CPU time pid has used so far.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it do not.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	// f[0] is field 3 (state): utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / userHZ, nil
}

// ioSyscalls is the number of read-class and write-class system calls
// pid has made so far (syscr+syscw in /proc/PID/io; each counts calls,
// including those that found no data).
func ioSyscalls(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "syscr" || k == "syscw") {
			c, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, err
			}
			n += c
		}
	}
	return n, nil
}

// ringEnters is the io_uring_enter calls a proxy's event loops have made
// so far (its metamesh_event_loop_ring_enters_total; 0 for a build
// without the counter, which has no ring either): system calls that
// /proc/PID/io does not count.
func ringEnters(admin string) (uint64, error) {
	text, err := scrape("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	if !strings.Contains(text, "\nmetamesh_event_loop_ring_enters_total ") {
		return 0, nil
	}
	n, err := gaugeValue(text, "metamesh_event_loop_ring_enters_total")
	return uint64(n), err
}

// ctxSwitches is the number of context switches pid's threads have made
// so far, voluntary (waits: a futex, epoll_wait, a blocking read) and
// involuntary (preempted), summed over every task in /proc/PID/task (the
// process's own status counts its main thread only). Threads that exited
// are not counted; Go's seldom do.
func ctxSwitches(pid int) (uint64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited since the listing
		}
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				c, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, err
				}
				n += c
			}
		}
	}
	return n, nil
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
