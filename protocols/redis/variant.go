package redis

import (
	"strconv"
	"sync"

	"github.com/metamesh/metamesh/protocols"
)

// Variants of the codec for upstream connections that need a setup of
// their own: READONLY on a connection to a Redis Cluster replica (it
// then serves reads of its primary's slots), SELECT n on a connection to
// database n of a standalone server. A variant sends them after the
// upstream AUTH on every new connection, and again after the RESET that
// recycles a client's own connection (both answer +OK, which the
// handshake and ResetReplyOK check). The proxy pools connections by
// codec value, so each variant is one value, made once.

type variantKey struct {
	readonly bool
	db       int
}

type variants struct {
	base *Codec // the codec New made
	mu   sync.Mutex
	m    map[variantKey]*Codec
}

// Variant returns the codec whose upstream connections are set up with
// READONLY (readonly) and SELECT db (db > 0): c itself for neither. The
// same arguments give the same value. Only a codec New made has variants.
func (c *Codec) Variant(readonly bool, db int) protocols.Codec {
	vs := c.variants
	if vs == nil {
		panic("redis: Variant of a codec New did not make")
	}
	if !readonly && db == 0 {
		return vs.base
	}
	k := variantKey{readonly, db}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if v, ok := vs.m[k]; ok {
		return v
	}
	v := *vs.base
	v.setup, v.setupN = nil, 0
	if readonly {
		v.setup = AppendCommand(v.setup, []byte("READONLY"))
		v.setupN++
	}
	if db > 0 {
		v.setup = AppendCommand(v.setup, []byte("SELECT"), []byte(strconv.Itoa(db)))
		v.setupN++
	}
	if vs.m == nil {
		vs.m = map[variantKey]*Codec{}
	}
	vs.m[k] = &v
	return &v
}

// Base returns the codec c is a variant of (c itself if it is none).
func (c *Codec) Base() *Codec {
	if c.variants == nil {
		return c
	}
	return c.variants.base
}
