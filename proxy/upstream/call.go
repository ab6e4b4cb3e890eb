package upstream

import (
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/accesslog"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/wire"
)

// Receiver is told the outcome of a Call. Exactly one outcome (a Respond
// with a response without More, or a Fail) is told once for every two-way
// Call that Send accepted; none for a oneway Call. Before it, a streamed
// response's parts (responses with More: docs/triple-streams.md) each
// come to Respond, in order, from the connection's read loop.
type Receiver interface {
	// Respond gets the decoded response. resp and its Raw bytes are only
	// valid during the call. The receiver queues what it writes and adds
	// the writer to b, which the caller flushes after its read batch. A
	// resp with More is a part of the answer: c still waits for the rest
	// and must not be released.
	Respond(c *Call, resp *protocols.Message, b *wire.Batch)
	// Fail reports that no response will come; b as for Respond. err is
	// ErrClientGone or ErrStreamCancelled for a call that Withdraw or
	// DepartStream could not hand back while a part of its streamed answer
	// was being delivered: once that delivery is done, its receiver ends
	// it as it ends the calls Withdraw returns, or those DepartStream
	// took.
	Fail(c *Call, reason protocols.Reason, err error, b *wire.Batch)
}

// The errors of a streaming call that left its connection during a
// delivery (Receiver.Fail): its client went away, or reset its stream.
var (
	ErrClientGone      = errors.New("upstream: the client went away")
	ErrStreamCancelled = errors.New("upstream: the client cancelled the stream")
)

// Call is one request in flight to an upstream host. The proxy keeps its
// own copy of the request frame, so a late failure can still be answered
// in the client's protocol (and, later, a request retried).
type Call struct {
	// Req is a copy of the client's request; Req.ID is the client's ID.
	Req protocols.Message
	// Set holds attributes to set on the forwarded request.
	Set []protocols.Header
	// Host is the upstream host the call goes to.
	Host *cluster.Host
	// Cluster is the cluster the call counts against (limits, outlier
	// detection), when set.
	Cluster *cluster.Cluster
	// Log is the access log the call's outcome is written to, when set.
	Log *accesslog.Logger
	// Span is the request's trace span, ended with the outcome, when set.
	Span trace.Span
	// Receiver gets the outcome.
	Receiver Receiver
	// Start is when the proxy received the request.
	Start time.Time
	// Service, Route and ClusterName name where the call went, for
	// metrics and logs; ResponseSet holds attributes to set on the response.
	Service, Route, ClusterName string
	ResponseSet                 []protocols.Header
	// Seq is the receiver's own sequence number for the call (the reply
	// slot of a pipelined client).
	Seq uint64
	// Affinity keeps a client's calls to a pipelined host on one
	// connection: calls with the same Affinity share it.
	Affinity uint64
	// Dedicated marks a call on a client's own connection (a
	// transaction, a blocking command).
	Dedicated bool
	// RequestStream marks a call whose request is streamed (Req has More:
	// docs/triple-streams.md, piece 5): Req is its first part, SendPart
	// writes the later ones, the upstream's credit for its stream goes to
	// its Receiver (a Crediter), it is streaming from the start (the
	// default timeout leaves it alone), and it is never sent again.
	RequestStream bool

	buf      []byte
	borrowed bool  // Req is the caller's, not a copy in buf
	cn       *conn // where a two-way call waits, set by send
	id       uint64
	resends  uint8 // times sent again, unprocessed (Resend)
	// streaming: a part of its answer came (a response with More); the
	// default timeout leaves it alone. Under its connection's mu.
	streaming bool
}

var callPool = sync.Pool{New: func() any { return new(Call) }}

// NewCall returns a pooled Call holding a copy of req.
func NewCall(req *protocols.Message) *Call {
	c := callPool.Get().(*Call)
	c.buf = append(c.buf[:0], req.Raw...)
	c.Req.Kind, c.Req.ID, c.Req.Status, c.Req.Marks = req.Kind, req.ID, req.Status, req.Marks
	c.Req.Raw = c.buf
	c.Req.Headers.Reset()
	for _, h := range req.Headers.All() {
		c.Req.Headers.Add(h.Key, h.Value)
	}
	return c
}

// BorrowCall returns a pooled Call whose Req is req itself, not a copy:
// for a caller that keeps req unchanged until every call made from it is
// released (one request tried several times, or mirrored).
func BorrowCall(req *protocols.Message) *Call {
	c := callPool.Get().(*Call)
	c.Req, c.borrowed = *req, true
	return c
}

// Release returns c to the pool. Its owner calls it once the outcome has
// been handled; c must not be used afterwards.
func (c *Call) Release() {
	c.Set, c.Host, c.Cluster, c.Log, c.Span, c.Receiver, c.ResponseSet = nil, nil, nil, nil, nil, nil, nil
	c.Service, c.Route, c.ClusterName, c.Seq, c.Affinity, c.Dedicated, c.RequestStream = "", "", "", 0, 0, false, false
	c.cn, c.id, c.resends, c.streaming = nil, 0, 0, false
	if c.borrowed {
		// Drop the references to the lender's frame and headers.
		c.Req, c.borrowed = protocols.Message{}, false
	}
	c.Req.Raw = nil
	c.Req.Headers.Reset()
	if cap(c.buf) > 64<<10 {
		c.buf = nil
	}
	callPool.Put(c)
}
