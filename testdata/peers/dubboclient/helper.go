package dubboclient

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/internal/helperproto"
	"github.com/metamesh/metamesh/testdata/peers/internal/peerbuild"
)

// HelperPackage is the command that hosts consumers out of process.
const HelperPackage = peerbuild.ModulePath + "/internal/cmd/dubboclient-helper"

func init() {
	if OutOfProcess() {
		// link the helper together with the first peer a test builds
		peerbuild.Want(HelperPackage)
	}
}

// ServeHelper serves the helper's net/rpc service on ln: in-process
// consumers driven by dialHelper's calls. It is what
// internal/cmd/dubboclient-helper runs.
func ServeHelper(ln net.Listener) error {
	if !inprocAvailable {
		return errors.New("dubboclient: the helper must be built without -race")
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName(helperproto.Service, &helperService{clients: map[int]backend{}}); err != nil {
		return err
	}
	srv.Accept(ln)
	return nil
}

type helperService struct {
	mu      sync.Mutex
	next    int
	clients map[int]backend
}

func (s *helperService) Dial(a helperproto.DialArgs, id *int) error {
	b, err := newInproc(a.Addr, a.Iface, Options(a.Opts))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	s.clients[s.next] = b
	*id = s.next
	return nil
}

func (s *helperService) Call(a helperproto.CallArgs, reply *string) error {
	s.mu.Lock()
	b := s.clients[a.ID]
	s.mu.Unlock()
	if b == nil {
		return ErrClosed
	}
	args := make([]interface{}, len(a.Args))
	for i, x := range a.Args {
		if x.IsInt {
			args[i] = x.Int
		} else {
			args[i] = x.Str
		}
	}
	out, err := b.call(a.Method, args, a.Attachments, a.Oneway, a.Timeout)
	*reply = out
	return err
}

func (s *helperService) Close(id int, _ *struct{}) error {
	s.mu.Lock()
	b := s.clients[id]
	delete(s.clients, id)
	s.mu.Unlock()
	if b != nil {
		b.close()
	}
	return nil
}

// helperProc is a helper process and the net/rpc client calling it.
type helperProc struct {
	rpc   *rpc.Client
	out   *lockedBuffer
	stdin io.WriteCloser // kept open (and referenced) for the process's life
	done  chan struct{}  // closed when the process has exited
}

// helper is the one helper process of this process's New.
var helper struct {
	once sync.Once
	p    *helperProc
	err  error
}

func startHelper() (*helperProc, error) {
	helper.once.Do(func() {
		helper.p, helper.err = launchHelper(func(cmd *exec.Cmd) error { return cmd.Start() }, net.Dial)
	})
	return helper.p, helper.err
}

// launchHelper builds and starts a helper process with start, and
// connects to it with dial.
func launchHelper(start func(*exec.Cmd) error, dial func(network, addr string) (net.Conn, error)) (*helperProc, error) {
	bin, err := peerbuild.Build(HelperPackage)
	if err != nil {
		return nil, fmt.Errorf("dubboclient: %w", err)
	}
	cmd := exec.Command(bin)
	p := &helperProc{out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.out
	// The helper exits when this pipe closes, i.e. when this process exits.
	p.stdin, err = cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("dubboclient: start helper: %w", err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent && strings.HasPrefix(line, "ready ") {
				addrc <- strings.TrimPrefix(line, "ready ")
				sent = true
				continue
			}
			p.out.Write([]byte(line + "\n"))
		}
		_ = cmd.Wait()
		close(addrc)
		close(p.done)
	}()
	select {
	case addr, ok := <-addrc:
		if !ok {
			return nil, fmt.Errorf("dubboclient: helper exited before ready:\n%s", p.out.String())
		}
		nc, err := dial("tcp", addr)
		if err != nil {
			_ = p.stdin.Close()
			return nil, err
		}
		p.rpc = rpc.NewClient(nc)
		return p, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("dubboclient: helper not ready after 30s:\n%s", p.out.String())
	}
}

// Helper is a helper process of its own, e.g. one started in another
// network namespace, whose consumers connect from there. It runs the
// real dubbo-go consumer whatever OutOfProcess says.
type Helper struct{ p *helperProc }

// StartHelper starts a helper process with start (which must call
// cmd.Start, e.g. in a namespace) and connects to its loopback address
// with dial (from the same namespace).
func StartHelper(start func(*exec.Cmd) error, dial func(network, addr string) (net.Conn, error)) (*Helper, error) {
	p, err := launchHelper(start, dial)
	if err != nil {
		return nil, err
	}
	return &Helper{p: p}, nil
}

// New connects a consumer in the helper for iface ("" means
// DefaultInterface) to the provider at addr.
func (h *Helper) New(addr, iface string, o Options) (*Client, error) {
	if iface == "" {
		iface = DefaultInterface
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	b, err := h.p.dial(addr, iface, o)
	if err != nil {
		return nil, err
	}
	return &Client{addr: addr, iface: iface, timeout: o.Timeout, b: b}, nil
}

// Close ends the helper process and waits for it to exit.
func (h *Helper) Close() {
	_ = h.p.rpc.Close()
	_ = h.p.stdin.Close()
	<-h.p.done
}

// Output is what the helper wrote to stderr so far.
func (h *Helper) Output() string { return h.p.out.String() }

// remote is a consumer in the helper process.
type remote struct {
	p  *helperProc
	id int
}

func dialHelper(addr, iface string, o Options) (backend, error) {
	p, err := startHelper()
	if err != nil {
		return nil, err
	}
	return p.dial(addr, iface, o)
}

func (p *helperProc) dial(addr, iface string, o Options) (backend, error) {
	var id int
	if err := p.rpc.Call(helperproto.Service+".Dial", helperproto.DialArgs{Addr: addr, Iface: iface, Opts: helperproto.Options(o)}, &id); err != nil {
		return nil, p.unwrapRPC(err)
	}
	return &remote{p: p, id: id}, nil
}

func (r *remote) call(method string, args []interface{}, atts map[string]string, oneway bool, timeout time.Duration) (string, error) {
	a := helperproto.CallArgs{ID: r.id, Method: method, Oneway: oneway, Attachments: atts, Timeout: timeout}
	for _, x := range args {
		switch v := x.(type) {
		case string:
			a.Args = append(a.Args, helperproto.Arg{Str: v})
		case int32:
			a.Args = append(a.Args, helperproto.Arg{Int: v, IsInt: true})
		default:
			return "", fmt.Errorf("dubboclient: argument %T not supported out of process", x)
		}
	}
	var out string
	call := r.p.rpc.Go(helperproto.Service+".Call", a, &out, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
		return out, r.p.unwrapRPC(call.Error)
	case <-time.After(timeout + 10*time.Second):
		return "", fmt.Errorf("dubboclient: helper did not answer %s within %s", method, timeout+10*time.Second)
	}
}

func (r *remote) close() {
	_ = r.p.rpc.Call(helperproto.Service+".Close", r.id, &struct{}{})
}

// unwrapRPC turns the helper's error text back into an error with the same
// text, and ErrClosed back into ErrClosed.
func (p *helperProc) unwrapRPC(err error) error {
	var se rpc.ServerError
	if errors.As(err, &se) {
		if string(se) == ErrClosed.Error() {
			return ErrClosed
		}
		return errors.New(string(se))
	}
	if errors.Is(err, rpc.ErrShutdown) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("dubboclient: helper process gone: %w\n%s", err, p.out.String())
	}
	return err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep the tail only
		l.b.Next(l.b.Len() - 1<<19)
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
