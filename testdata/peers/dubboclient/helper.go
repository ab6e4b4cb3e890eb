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

// helper is the one helper process of this process.
var helper struct {
	once  sync.Once
	rpc   *rpc.Client
	out   *lockedBuffer
	stdin io.WriteCloser // kept open (and referenced) for the process's life
	err   error
}

func startHelper() (*rpc.Client, error) {
	helper.once.Do(func() {
		bin, err := peerbuild.Build(HelperPackage)
		if err != nil {
			helper.err = fmt.Errorf("dubboclient: %w", err)
			return
		}
		cmd := exec.Command(bin)
		helper.out = &lockedBuffer{}
		cmd.Stderr = helper.out
		// The helper exits when this pipe closes, i.e. when this process exits.
		helper.stdin, err = cmd.StdinPipe()
		if err != nil {
			helper.err = err
			return
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			helper.err = err
			return
		}
		if err := cmd.Start(); err != nil {
			helper.err = fmt.Errorf("dubboclient: start helper: %w", err)
			return
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
				helper.out.Write([]byte(line + "\n"))
			}
			_ = cmd.Wait()
			close(addrc)
		}()
		select {
		case addr, ok := <-addrc:
			if !ok {
				helper.err = fmt.Errorf("dubboclient: helper exited before ready:\n%s", helper.out.String())
				return
			}
			helper.rpc, helper.err = rpc.Dial("tcp", addr)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			helper.err = fmt.Errorf("dubboclient: helper not ready after 30s:\n%s", helper.out.String())
		}
	})
	return helper.rpc, helper.err
}

// remote is a consumer in the helper process.
type remote struct {
	rpc *rpc.Client
	id  int
}

func dialHelper(addr, iface string, o Options) (backend, error) {
	c, err := startHelper()
	if err != nil {
		return nil, err
	}
	var id int
	if err := c.Call(helperproto.Service+".Dial", helperproto.DialArgs{Addr: addr, Iface: iface, Opts: helperproto.Options(o)}, &id); err != nil {
		return nil, unwrapRPC(err)
	}
	return &remote{rpc: c, id: id}, nil
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
	call := r.rpc.Go(helperproto.Service+".Call", a, &out, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
		return out, unwrapRPC(call.Error)
	case <-time.After(timeout + 10*time.Second):
		return "", fmt.Errorf("dubboclient: helper did not answer %s within %s", method, timeout+10*time.Second)
	}
}

func (r *remote) close() {
	_ = r.rpc.Call(helperproto.Service+".Close", r.id, &struct{}{})
}

// unwrapRPC turns the helper's error text back into an error with the same
// text, and ErrClosed back into ErrClosed.
func unwrapRPC(err error) error {
	var se rpc.ServerError
	if errors.As(err, &se) {
		if string(se) == ErrClosed.Error() {
			return ErrClosed
		}
		return errors.New(string(se))
	}
	if errors.Is(err, rpc.ErrShutdown) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("dubboclient: helper process gone: %w\n%s", err, helper.out.String())
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
