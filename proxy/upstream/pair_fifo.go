package upstream

import (
	"errors"
	"slices"

	"github.com/metamesh/metamesh/protocols"
)

// fifo pairs replies with calls by order, for pipelined codecs (answered
// in order) and exclusive ones (one call at a time, which the exclusive
// acquire strategy guarantees): each call goes out with the client's own
// ID and the next reply answers the oldest call waiting. No call can leave
// before its reply, which would go to the next call: the connection must
// close instead.
type fifo struct{ calls []*Call }

func newFIFO() pairing { return &fifo{} }

// errStray closes a connection that sent a reply when no call waited: its
// replies no longer match its calls.
var errStray = errors.New("upstream: response with no request outstanding")

func (q *fifo) id(c *Call) uint64 { return c.Req.ID }

func (q *fifo) wait(c *Call, _ uint64) { q.calls = append(q.calls, c) }

func (q *fifo) take(resp *protocols.Message) (*Call, error) {
	if len(q.calls) == 0 {
		return nil, errStray
	}
	c := q.calls[0]
	if resp.More { // the oldest call's answer goes on
		c.streaming = true
		return c, nil
	}
	q.calls[0] = nil
	q.calls = q.calls[1:]
	return c, nil
}

func (q *fifo) pending() int { return len(q.calls) }

func (q *fifo) find(uint64) *Call { return nil }

func (q *fifo) cancel(c *Call) (took, broken bool) {
	return false, slices.Contains(q.calls, c)
}

func (q *fifo) leave(pick func(*Call) bool, out []*Call, closing bool) ([]*Call, bool) {
	if !closing {
		return out, slices.ContainsFunc(q.calls, pick)
	}
	n := len(out)
	keep := q.calls[:0]
	for _, c := range q.calls {
		if pick(c) {
			out = append(out, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(q.calls[len(keep):])
	q.calls = keep
	return out, len(out) > n
}

var _ pairing = (*fifo)(nil)
