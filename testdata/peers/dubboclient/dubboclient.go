// Package dubboclient is a thin wrapper over a real dubbo-go v3.3.0 consumer
// on the dubbo protocol (hessian2), connected directly to one provider
// address without any registry. It calls the greeter-server's
// GreetingsService methods and is what metamesh's interop tests use as the
// downstream "real client".
//
// # In process or out of process
//
// Normally the consumer runs in the caller's process. dubbo-go v3.3.0 and
// its getty transport have data races of their own (e.g. getty's
// gettyTCPConn timeouts, RpcClientHandler.OnMessage's timeoutTimes, the
// logger swap in dubbo.NewInstance), which fail any test built with -race.
// So when this package is built with the race detector, New starts (once
// per process) a helper process, internal/cmd/dubboclient-helper, built
// without -race, that hosts the real dubbo-go consumers, and calls them over
// net/rpc on loopback. Setting METAMESH_DUBBOCLIENT=subprocess selects that
// mode without -race too. The API and the errors' texts are the same in both
// modes; only what crosses the wire between this package and the helper
// differs.
//
// # Attachments
//
// dubbo-go's new client API does not send attachments taken from the call's
// context over the dubbo protocol (PEERS.md quirk 3). WithAttachments stores
// them in the context and a client filter registered by this package copies
// them onto the invocation with invocation.SetAttachment(k, v), which puts
// them in the request's attachment map on the wire.
//
// # Errors for non-OK response statuses
//
// When a response frame's status byte is not 20 (OK), e.g. 60
// SERVICE_NOT_FOUND or 80 SERVER_ERROR, dubbo-go v3.3.0 decodes the body as
// one hessian2 value that must be a string (the error message) and makes it
// the call's error in
//
//	protocol/dubbo/impl/codec.go:176, (*ProtocolCodec).Decode:
//	p.Body.(*ResponsePayload).Exception = perrors.Errorf("java exception:%s", exception.(string))
//
// which protocol/dubbo/dubbo_codec.go:290-296, (*DubboCodec).decodeResponse,
// copies into the RPC result (rpcResult.Err). The call returns that error
// unchanged (a github.com/pkg/errors withStack), so
//
//	err.Error() == "java exception:" + message   // e.g. "java exception:no such service"
//
// with no space after the colon and no trace of the status number: a
// consumer cannot tell 60 from 80. If the body of a non-OK response is not a
// hessian2 string (e.g. null), the type assertion panics in getty's read
// goroutine; getty recovers, the session is closed, and the call fails only
// with the read timeout below. TestNonOKStatusSurfaces pins all of this.
//
// A dubbo-go provider itself never sends a non-20 status: an unknown method
// or interface, or a method returning an error, is answered with status 20
// and a RESPONSE_WITH_EXCEPTION body, and err.Error() is the bare message,
// e.g. "cannot find method [NoSuch] of service [<iface>] in dubbo" or
// "don't have this exporter, key: <iface>".
//
// A response that does not arrive within the call's timeout gives an error
// whose text is "maybe the client read timeout or fail to decode tcp stream
// in Writer.Write" (remoting/getty/getty_client.go:49, errClientReadTimeout);
// see IsTimeout.
//
// # Connections
//
// dubbo-go shares one exchange client per provider address (host:port) among
// all references in the process (protocol/dubbo/dubbo_protocol.go:51,
// exchangeClientMap) and that client keeps a pool of "connection-number" TCP
// connections, 16 by default (remoting/getty/config.go:121,
// GetDefaultClientConfig). The getty client opens the first connection at
// once and the others one at a time in the background, sleeping 300ms*n
// between attempts (n = 1..10; dubbo-getty client.go reConnect), so a pool
// of 16 is complete after about 32 s; each call picks one of the open
// connections at random. Options.Connections sets connection-number (via
// the dubbo protocol's params in dubbo-go's root config) but only for the
// first Client of an address while the shared exchange client lives: Close
// releases it when the last Client to that address is closed, and its
// connections close asynchronously shortly after.
//
// # Concurrency
//
// A Client is safe for concurrent use by many goroutines.
package dubboclient

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterface is the interface the greeter-server exports by default.
const DefaultInterface = "org.apache.dubbo.samples.api.GreetingsService"

// DefaultTimeout is the per-call timeout when neither Options.Timeout nor a
// context deadline gives one.
const DefaultTimeout = 3 * time.Second

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("dubboclient: client closed")

// Options tune a Client. The zero value gives dubbo-go's defaults except
// for the cluster, which is always failfast (dubbo-go's default, failover,
// resends a failed call up to twice, which hides what the tests look for).
type Options struct {
	// Timeout per call when the context has no deadline. 0 means DefaultTimeout.
	Timeout time.Duration
	// Connections is getty's connection-number: TCP connections to the
	// address. 0 means dubbo-go's default (16). See the package comment.
	Connections int
	// HeartbeatPeriod of the consumer's heartbeats on each connection.
	// 0 means dubbo-go's default (30s).
	HeartbeatPeriod time.Duration
	// MaxMsgLen is getty's max message length. 0 means dubbo-go's default
	// (102400 bytes).
	MaxMsgLen int
	// LogLevel for dubbo-go's logger; "" means "warn".
	LogLevel string
	// Version is the Dubbo service version the calls name (a provider
	// exported with a version answers only calls naming it); "" names none.
	Version string
}

// backend is a dubbo-go consumer, in process or in the helper.
type backend interface {
	call(method string, args []interface{}, atts map[string]string, oneway bool, timeout time.Duration) (string, error)
	close()
}

// Client calls one interface at one provider address. It is safe for
// concurrent use.
type Client struct {
	addr    string
	iface   string
	timeout time.Duration
	b       backend

	closeOnce sync.Once
	closed    atomic.Bool
}

// New connects a consumer for iface ("" means DefaultInterface) to the
// provider at addr (host:port) with default Options.
func New(addr, iface string) (*Client, error) {
	return NewWithOptions(addr, iface, Options{})
}

// NewWithOptions connects a consumer for iface to the provider at addr.
func NewWithOptions(addr, iface string, o Options) (*Client, error) {
	if iface == "" {
		iface = DefaultInterface
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	var (
		b   backend
		err error
	)
	if OutOfProcess() {
		b, err = dialHelper(addr, iface, o)
	} else {
		b, err = newInproc(addr, iface, o)
	}
	if err != nil {
		return nil, err
	}
	return &Client{addr: addr, iface: iface, timeout: o.Timeout, b: b}, nil
}

// OutOfProcess reports whether consumers run in the helper process: always
// under the race detector, or when METAMESH_DUBBOCLIENT=subprocess.
func OutOfProcess() bool {
	return !inprocAvailable || os.Getenv("METAMESH_DUBBOCLIENT") == "subprocess"
}

// Addr is the provider address the client calls.
func (c *Client) Addr() string { return c.addr }

// Interface is the Dubbo interface the client calls.
func (c *Client) Interface() string { return c.iface }

// SayHello calls SayHello(name) and returns "<version>|<name>".
func (c *Client) SayHello(ctx context.Context, name string) (string, error) {
	return c.do(ctx, "SayHello", []interface{}{name}, false)
}

// Attachment calls Attachment(key); the provider answers
// "<version>|<value of attachment key>".
func (c *Client) Attachment(ctx context.Context, key string) (string, error) {
	return c.do(ctx, "Attachment", []interface{}{key}, false)
}

// Sleep calls Sleep(ms); the provider answers "<version>|slept" after ms
// milliseconds.
func (c *Client) Sleep(ctx context.Context, ms int32) (string, error) {
	return c.do(ctx, "Sleep", []interface{}{ms}, false)
}

// Call invokes any method with string or int32 arguments and decodes the
// reply into a string (e.g. to provoke an unknown-method error).
func (c *Client) Call(ctx context.Context, method string, args ...interface{}) (string, error) {
	return c.do(ctx, method, args, false)
}

// SayHelloOneway sends SayHello(name) as a oneway request (flag byte 0x82:
// request, not two-way) and returns once it is written; the provider sends
// no response. dubbo-go sends a call oneway when the invocation's "async"
// attachment is "true" and it has no callback (protocol/dubbo/
// dubbo_invoker.go, ExchangeClient.Send), so "async":"true" travels with
// the request.
func (c *Client) SayHelloOneway(ctx context.Context, name string) error {
	_, err := c.do(ctx, "SayHello", []interface{}{name}, true)
	return err
}

func (c *Client) do(ctx context.Context, method string, args []interface{}, oneway bool) (string, error) {
	if c.closed.Load() {
		return "", ErrClosed
	}
	if ctx == nil {
		ctx = context.Background()
	}
	timeout := c.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return "", context.DeadlineExceeded
		}
	}
	return c.b.call(method, args, AttachmentsFrom(ctx), oneway, timeout)
}

// Close releases the client's reference; later calls return ErrClosed.
// dubbo-go closes the shared connections to the address when its last
// reference is closed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.b.close()
	})
	return nil
}

type attachmentsKey struct{}

// WithAttachments returns a context whose calls carry the given attachments
// (merged over any the context already carries).
func WithAttachments(ctx context.Context, atts map[string]string) context.Context {
	merged := map[string]string{}
	for k, v := range AttachmentsFrom(ctx) {
		merged[k] = v
	}
	for k, v := range atts {
		merged[k] = v
	}
	return context.WithValue(ctx, attachmentsKey{}, merged)
}

// AttachmentsFrom returns the attachments WithAttachments put in ctx.
func AttachmentsFrom(ctx context.Context) map[string]string {
	m, _ := ctx.Value(attachmentsKey{}).(map[string]string)
	return m
}

// IsTimeout reports whether err is dubbo-go's client read timeout (or the
// context's deadline passing before the call was sent).
func IsTimeout(err error) bool {
	return err != nil && (errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "client read timeout"))
}
