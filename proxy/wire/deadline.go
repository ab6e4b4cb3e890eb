package wire

import (
	"errors"
	"os"
	"time"
)

// timer is a Reader's state for its bounds. A read deadline costs a
// runtime timer update each time it moves, so it moves as seldom as the
// bounds allow: the idle deadline is set once per idle period and, when
// it fires after traffic, moved to the idle timeout past the last read
// (not pushed on every read); the frame deadline is set once per
// incomplete frame.
type timer struct {
	frameAt  time.Time // first byte of the incomplete frame
	idleAt   time.Time // the idle deadline in force; zero: none set yet
	lastRead time.Time // when bytes last arrived (with an idle timeout)
	armed    time.Time // the read deadline last set
	// unsure: the last read was short and the loop waits without having
	// read until EAGAIN (readfd.go), so the peer's FIN may have come with
	// the bytes it took, in the one poller event that woke it: no other
	// event would tell the loop. arm bounds the wait so that one read
	// looks (verifyAt).
	unsure bool
	// wakeAt is when the loop calls its flush again although nothing
	// was read (WakeAt); zero: never.
	wakeAt time.Time
}

// verifyTick is how long an unsure wait lasts at most, give or take a
// tick: a FIN that came with a read's bytes is seen within 2 ticks.
const verifyTick = 50 * time.Millisecond

// fired stands for a read deadline that fired and is still set on the
// socket (classify): no deadline arm computes equals it, so arm always
// replaces it, with the zero time when none is due.
var fired = time.Unix(0, 1)

// verifyAt is when an unsure wait ends: the same moment for every wait
// begun within one tick, so that a busy connection's deadline moves at
// most once a tick, not on every read.
func verifyAt() time.Time { return time.Now().Truncate(verifyTick).Add(2 * verifyTick) }

// stamp records that bytes arrived now.
func (l *Reader) stamp() {
	if l.opts.IdleTimeout > 0 {
		l.lastRead = time.Now()
	}
}

// frameBegan records that an incomplete frame began now: its deadline
// replaces the idle one until it is whole.
func (l *Reader) frameBegan() {
	l.idleAt = time.Time{}
	if l.opts.FrameTimeout > 0 {
		l.frameAt = time.Now()
	}
}

// bound is the deadline the loop's state calls for: the incomplete
// frame's, else the idle one (zero: none).
func (l *Reader) bound() time.Time {
	switch {
	case l.incomplete():
		if l.opts.FrameTimeout > 0 {
			return l.frameAt.Add(l.opts.FrameTimeout)
		}
	case l.opts.IdleTimeout > 0:
		if l.idleAt.IsZero() {
			from := l.lastRead
			if from.IsZero() {
				from = time.Now()
			}
			l.idleAt = from.Add(l.opts.IdleTimeout)
		}
		return l.idleAt
	}
	return time.Time{}
}

// arm sets the read deadline the loop's state calls for, no later than
// the drain's moment, unless it is set already. It reads drainAt again
// after setting it, so a concurrent Drain is never overwritten by an
// older deadline.
func (l *Reader) arm() error {
	if l.raw == nil && !l.incomplete() && l.draining() {
		return ErrDrained // no non-blocking read without a socket
	}
	if l.deadline == nil || (l.opts.FrameTimeout == 0 && l.opts.IdleTimeout == 0 && l.drainAt.Load() == 0 && !l.unsure && l.armed.IsZero() && l.wakeAt.IsZero()) {
		return nil
	}
	for {
		at := l.drainAt.Load()
		dl := l.bound()
		if l.unsure {
			if v := verifyAt(); dl.IsZero() || v.Before(dl) {
				dl = v
			}
		}
		if w := l.wakeAt; !w.IsZero() && (dl.IsZero() || w.Before(dl)) {
			dl = w
		}
		if at != 0 {
			if drain := time.Unix(0, at); time.Now().Before(drain) && (dl.IsZero() || drain.Before(dl)) {
				dl = drain
			}
		}
		if !dl.Equal(l.armed) {
			if err := l.deadline.SetReadDeadline(dl); err != nil {
				return err
			}
			l.armed = dl
		}
		if l.drainAt.Load() == at {
			return nil
		}
	}
}

// classify turns a deadline into the bound it enforces; it returns nil
// when the loop goes on (after traffic since the idle deadline was set, a
// busy connection's idle time, a drain's wake-up): arm then sets the next
// deadline.
func (l *Reader) classify(err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	// Whatever fired (Drain sets deadlines too) is no longer in force,
	// but it is still the socket's: arm must set the next one or clear
	// it, else every read would fail at once on it again.
	l.armed = fired
	now := time.Now()
	if !l.wakeAt.IsZero() && !now.Before(l.wakeAt) {
		l.wakeAt = time.Time{}
		l.endReads()
	}
	if l.incomplete() {
		if l.opts.FrameTimeout > 0 && !now.Before(l.frameAt.Add(l.opts.FrameTimeout)) {
			return ErrFrameTimeout
		}
		return nil
	}
	if l.opts.IdleTimeout == 0 || l.idleAt.IsZero() || now.Before(l.idleAt) {
		return nil
	}
	if next := l.lastRead.Add(l.opts.IdleTimeout); now.Before(next) {
		l.idleAt = next
		return nil
	}
	if l.opts.Busy != nil && l.opts.Busy() {
		l.idleAt = now.Add(l.opts.IdleTimeout)
		return nil
	}
	return ErrIdleTimeout
}

// WillWait tells the read loop that the frame being handled is about to
// wait (a call to another service). On an event loop the loop goes on
// with its other connections in a new goroutine at once, and this one
// finishes the connection's frames alone, as when the loop's watchdog
// finds a handler waiting (Loop); in a goroutine of its own it does
// nothing. Call it from handle only.
func (l *Reader) WillWait() {
	if l.lc != nil {
		l.lc.handOff()
	}
}

// CanWake reports whether WakeAt works on this loop: on a connection with
// read deadlines, not on an event loop's (whose flush runs at the end of
// the loop's turn).
func (l *Reader) CanWake() bool { return l.deadline != nil && l.lc == nil }

// WakeAt asks the loop to call its flush again at t, although nothing
// was read by then (a later call replaces t; the flush after a read may
// call it again). Read loop only: from the handler or the flush.
func (l *Reader) WakeAt(t time.Time) { l.wakeAt = t }

// Drain asks the loop to stop reading once it has read what the peer sent
// up to grace from now, and finished the frame it is in: it then returns
// ErrDrained. Safe to call from any goroutine.
func (l *Reader) Drain(grace time.Duration) {
	at := time.Now().Add(grace)
	l.drainAt.Store(at.UnixNano())
	if l.deadline != nil {
		_ = l.deadline.SetReadDeadline(at)
	}
}

// draining reports whether the moment Drain set has come.
func (l *Reader) draining() bool {
	at := l.drainAt.Load()
	return at != 0 && time.Now().UnixNano() >= at
}
