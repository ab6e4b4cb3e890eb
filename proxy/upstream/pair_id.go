package upstream

import "github.com/metamesh/metamesh/protocols"

// byID pairs replies with calls by request ID, for multiplexed codecs:
// each call goes out with an ID of its connection's own (two clients may
// have used the same one) and its reply echoes it. A call can leave before
// its reply (a timeout, a client gone): the late reply then pairs with
// nothing and is dropped, so the connection stays open.
type byID struct {
	calls map[uint64]*Call
	last  uint64 // the last ID given out
}

func newByID() pairing { return &byID{calls: make(map[uint64]*Call)} }

// maxID bounds the IDs the proxy gives requests on one connection: the
// narrowest request ID among codecs is Thrift's signed 32-bit seqid.
const maxID = 1<<31 - 1

// id returns the next free request ID, wrapping around and skipping 0 and
// IDs still in flight.
func (q *byID) id(*Call) uint64 {
	for {
		q.last++
		if q.last > maxID {
			q.last = 1
		}
		if _, busy := q.calls[q.last]; !busy {
			return q.last
		}
	}
}

func (q *byID) wait(c *Call, id uint64) { q.calls[id] = c }

// take never fails: a reply to an ID nobody waits for is late (its call
// timed out or was withdrawn) and is dropped. A reply with More leaves its
// call waiting for the rest, which makes it a streaming call.
func (q *byID) take(resp *protocols.Message) (*Call, error) {
	c := q.calls[resp.ID]
	if resp.More {
		if c != nil {
			c.streaming = true
		}
		return c, nil
	}
	delete(q.calls, resp.ID)
	return c, nil
}

func (q *byID) pending() int { return len(q.calls) }

func (q *byID) find(id uint64) *Call { return q.calls[id] }

func (q *byID) cancel(c *Call) (took, broken bool) {
	if q.calls[c.id] != c {
		return false, false
	}
	delete(q.calls, c.id)
	return true, false
}

func (q *byID) leave(pick func(*Call) bool, out []*Call, _ bool) ([]*Call, bool) {
	for id, c := range q.calls {
		if pick(c) {
			delete(q.calls, id)
			out = append(out, c)
		}
	}
	return out, false
}

var _ pairing = (*byID)(nil)
