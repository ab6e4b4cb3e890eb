package xds

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// stream is what state-of-the-world and delta streams have in common:
// their node, their nonces and their admission. It belongs to the
// stream's goroutine.
type stream struct {
	s        *Server
	ctx      context.Context
	protocol string // sotw or delta
	node     string // "" until the first request
	gateway  string // the gateway the node serves ("" a sidecar)
	nonces   uint64

	held     int64            // admission held
	awaiting [4]bool          // by type: a response sent under it is unanswered
	expiry   *time.Timer      // gives the admission back after admissionHold
	expired  <-chan time.Time // expiry's channel while held, else nil
	// secrets wakes the stream when its proxy's workload certificate is
	// ready to send: proven and issued, or due to be re-issued
	// (secrets_stream.go).
	secrets <-chan struct{}
}

var errShutdown = status.Error(codes.Unavailable, "xds: the control plane is shutting down")

// serve runs a stream: requests are read on their own goroutine and
// handed to handle; after each batch of requests waiting, and after each
// publish, flush sends the stream what its view has that its proxy
// lacks.
func serve[Req any](st *stream, recv func() (Req, error), handle func(Req) error, flush func(*view) error) error {
	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()
	stop := context.AfterFunc(st.s.streamsCtx, cancel)
	defer stop()
	st.ctx = ctx
	defer st.close()

	reqs := make(chan Req, 4)
	errc := make(chan error, 1)
	go func() {
		for {
			req, err := recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	pub := st.s.state.Load()
	for {
		select {
		case <-ctx.Done():
			if st.s.streamsCtx.Err() != nil {
				return errShutdown
			}
			return ctx.Err()
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case req := <-reqs:
			if err := handle(req); err != nil {
				return err
			}
			// Requests already waiting are handled before answering: a
			// proxy's first requests, one per type, get their responses
			// together and in type order.
			for more := true; more; {
				select {
				case req := <-reqs:
					if err := handle(req); err != nil {
						return err
					}
				default:
					more = false
				}
			}
		case <-pub.replaced:
			pub = st.s.state.Load()
		case <-st.expired:
			st.release()
		case <-st.secrets:
		}
		if vw := pub.forProxy(st.node, st.gateway); st.node != "" && vw != nil {
			if err := flush(vw); err != nil {
				return err
			}
		}
	}
}

// attach takes the node of the stream's first request.
func (st *stream) attach(node *corev3.Node) error {
	if st.node != "" {
		return nil
	}
	if err := st.s.attach(node, st.protocol); err != nil {
		return err
	}
	st.node, st.gateway = node.GetId(), gatewayOf(node)
	return nil
}

func (st *stream) close() {
	st.release()
	if st.node != "" {
		st.s.detach(st.node)
	}
}

func (st *stream) nextNonce() string {
	st.nonces++
	return strconv.FormatUint(st.nonces, 10)
}

// admit takes admission for n bytes about to be sent, unless the stream
// holds some already or n is 0: responses marshaled once for every stream
// (a table's whole, a diff between two of its versions) are not counted,
// since a stream sending them holds only a reference (see admission).
func (st *stream) admit(n int64) error {
	if st.held > 0 || n == 0 {
		return nil
	}
	held, err := st.s.admission.acquire(st.ctx, n)
	if err != nil {
		return err
	}
	st.held = held
	if st.expiry == nil {
		st.expiry = time.NewTimer(admissionHold)
	} else {
		st.expiry.Reset(admissionHold)
	}
	st.expired = st.expiry.C
	return nil
}

// sent records a response of type i sent.
func (st *stream) sent(i int, version string) {
	if st.held > 0 {
		st.awaiting[i] = true
	}
	st.s.sent(st.node, typeOrder[i], version, st.protocol)
}

// answered records the proxy's answer to the last response of type i;
// the admission is given back once every response sent under it is.
func (st *stream) answered(i int) {
	st.awaiting[i] = false
	if st.awaiting == [4]bool{} {
		st.release()
	}
}

func (st *stream) release() {
	if st.held == 0 {
		return
	}
	st.s.admission.release(st.held)
	st.held, st.awaiting, st.expired = 0, [4]bool{}, nil
	st.expiry.Stop()
}
