package xds

import (
	"errors"
	"hash/maphash"
	"math/bits"
	"slices"
	"unicode/utf8"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// deltaRequest is a delta request as the codec decodes it for the
// stream: everything but initial_resource_versions decoded as usual, and
// that field kept as it came, its records (each a name and a version)
// unparsed. A reconnecting proxy names every resource it has (some
// 22,000 for 2,000 services); decoding them into a Go map cost more
// control-plane CPU than the rest of a resume storm (docs/xds.md#resume),
// so they are compared with the table where they lie, allocating nothing
// per resource (diffFromRecords), and not at all when their digest is
// the table's (the proxy has exactly the table: a restart with the
// config unchanged).
type deltaRequest struct {
	*discoveryv3.DeltaDiscoveryRequest
	initial initialVersions
}

// initialVersions are a request's initial_resource_versions as they came.
type initialVersions struct {
	records []byte // the field's records, tags included; nil: none
	n       int    // records
	digest  uint64 // the sum of their recordHash
	// inPlace: records lie in the request decodeDelta decoded, which
	// is buf's (a pooled buffer, the codec's) if set.
	inPlace bool
	buf     *[]byte
}

// release gives the pooled buffer records lie in back, if any: nothing
// may use records afterwards.
func (iv *initialVersions) release() {
	if iv.buf != nil {
		putRequestBuf(iv.buf)
	}
	*iv = initialVersions{}
}

// digestSeed seeds recordHash: a proxy cannot choose names whose digest
// matches another set's.
var digestSeed = maphash.MakeSeed()

// recordHash is the hash of one name and its version, summed into a
// digest of a set of them: the sum does not depend on their order, which
// protobuf leaves free. Name and version are hashed apart, each in one
// call (a maphash.Hash reset and written per record was a third of
// decoding a resume's names), and mixed by a bijection that is not
// linear: with a sum of the two hashes, two names with their versions
// swapped would digest alike.
func recordHash(name, version string) uint64 {
	return mixRecord(maphash.String(digestSeed, name), maphash.String(digestSeed, version))
}

// hashRecord is recordHash of a record as it lies in a request.
func hashRecord(name, version []byte) uint64 {
	return mixRecord(maphash.Bytes(digestSeed, name), maphash.Bytes(digestSeed, version))
}

// mixRecord combines a name's hash and its version's: the version's
// rotated, so that a name and a version alike do not cancel, then
// SplitMix64's finalizer.
func mixRecord(name, version uint64) uint64 {
	x := name ^ bits.RotateLeft64(version, 29)
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// digest is the digest of t's names and versions, computed once.
func (t *table) digest() uint64 {
	t.digestOnce.Do(func() {
		for i, name := range t.names {
			t.digestSum += recordHash(name, t.delta[i].Version)
		}
	})
	return t.digestSum
}

// initialField is initial_resource_versions' field number.
var initialField = (&discoveryv3.DeltaDiscoveryRequest{}).ProtoReflect().Descriptor().Fields().ByName("initial_resource_versions").Number()

// decodeDelta decodes b into r: initial_resource_versions' records are
// checked (well-formed, names and versions UTF-8, as protobuf's decoder
// would) and digested, and kept in r.initial where they lie in b (b is
// r's from then on) unless other fields come between them; the rest is
// decoded by protobuf.
func decodeDelta(b []byte, r *deltaRequest) error {
	var rest []byte
	start, end, apart := -1, -1, false
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		field := b[off : off+n+m]
		if num != initialField || typ != protowire.BytesType {
			rest = append(rest, field...)
			off += n + m
			continue
		}
		name, version, err := versionRecord(field[n:], true)
		if err != nil {
			return err
		}
		r.initial.n++
		r.initial.digest += hashRecord(name, version)
		switch {
		case start < 0:
			start = off
		case end != off:
			apart = true
		}
		off += n + m
		end = off
	}
	if r.DeltaDiscoveryRequest == nil {
		r.DeltaDiscoveryRequest = &discoveryv3.DeltaDiscoveryRequest{}
	}
	if start < 0 {
		return proto.Unmarshal(b, r.DeltaDiscoveryRequest)
	}
	r.initial.records, r.initial.inPlace = b[start:end:end], !apart
	if apart {
		r.initial.records = initialRecords(b)
	}
	return proto.Unmarshal(rest, r.DeltaDiscoveryRequest)
}

// initialRecords copies the initial_resource_versions records of b, a
// request decodeDelta checked, into a buffer of their own.
func initialRecords(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if num == initialField && typ == protowire.BytesType {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return out
}

var errRecord = errors.New("xds: initial_resource_versions: a name or version is not valid UTF-8")

// versionRecord parses one initial_resource_versions record (its length
// prefix first): the map entry's key and value, either absent being "";
// check: also that they are UTF-8 (done once, when decoded).
func versionRecord(b []byte, check bool) (name, version []byte, err error) {
	entry, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, nil, protowire.ParseError(n)
	}
	for len(entry) > 0 {
		num, typ, n := protowire.ConsumeTag(entry)
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		entry = entry[n:]
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(entry)
			if m < 0 {
				return nil, nil, protowire.ParseError(m)
			}
			if check && !utf8.Valid(v) {
				return nil, nil, errRecord
			}
			if num == 1 {
				name = v
			} else {
				version = v
			}
			entry = entry[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, entry)
		if m < 0 {
			return nil, nil, protowire.ParseError(m)
		}
		entry = entry[m:]
	}
	return name, version, nil
}

// diffFromRecords is what a proxy holding the resources named in iv (a
// deltaRequest's initial, checked by decodeDelta) lacks of t: nothing if
// iv's digest is t's, else found name by name. A name named twice counts
// with its last version, as in a protobuf map.
func (t *table) diffFromRecords(iv initialVersions) *tableDiff {
	if iv.n == len(t.names) && iv.digest == t.digest() {
		return t.newDiff(nil, nil)
	}
	records := iv.records
	have := make([]bool, len(t.names)) // holds t's version
	var removed []string
	for len(records) > 0 {
		_, _, n := protowire.ConsumeTag(records)
		name, version, _ := versionRecord(records[n:], false)
		records = records[n+protowire.ConsumeFieldValue(initialField, protowire.BytesType, records[n:]):]
		if i, ok := t.index[string(name)]; ok {
			have[i] = string(version) == t.delta[i].Version
		} else {
			removed = append(removed, string(name))
		}
	}
	var changed []*discoveryv3.Resource
	for i, ok := range have {
		if !ok {
			changed = append(changed, t.delta[i])
		}
	}
	slices.Sort(removed)
	return t.newDiff(changed, slices.Compact(removed))
}
