//go:build linux

package wire

import (
	"errors"
	"syscall"
)

// prefetch reads the sockets the last poll found readable in one
// io_uring_enter when two or more are to be read and the loop has a ring,
// each into its Reader's buffer, as its serveFD would have read them one
// read(2) at a time: serveFD then takes the outcome as its first read
// (Reader.pre). A reader that cannot take a buffer now (the budget) is
// left to serveFD, which says why.
func (lp *Loop) prefetch() {
	ring := lp.ring
	ready := lp.ready[lp.next:]
	if ring == nil || ring.broken || len(ready) < ringMin {
		return
	}
	for start := 0; start < len(ready); start += ringEntries {
		batch := ready[start:min(len(ready), start+ringEntries)]
		ops := lp.reads[:0]
		live := 0
		for _, c := range batch {
			l := c.rd
			op := ringOp{fd: c.fd, err: errSkip}
			if !c.ended && !l.pre.ok && l.ensure() == nil {
				op.p, op.recv, op.err = l.buf[l.end:], true, nil
				live++
			}
			ops = append(ops, op)
		}
		if live >= ringMin {
			ring.submit(ops)
		}
		for i, c := range batch {
			o := ops[i]
			ops[i] = ringOp{}
			if o.err == errSkip || !o.done {
				continue // serveFD reads it
			}
			pre := prefetched{ok: true, n: o.n, err: o.err}
			if o.eagain {
				pre.err = syscall.EAGAIN
			}
			c.rd.pre = pre
		}
		lp.reads = ops[:0]
	}
}

// errSkip marks an operation prefetch does not submit.
var errSkip = errors.New("wire: not read ahead")
