package xds_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// typeDigest is what a lean sidecar (h2sidecar_test.go) checks of the
// resources of one type: their count and the sum of their names' hashes
// (nameHash), which does not depend on their order.
type typeDigest struct {
	Count int    `json:"count"`
	Sum   uint64 `json:"sum"`
}

func (d *typeDigest) add(name []byte) {
	d.Count++
	d.Sum += nameHash(name)
}

// castagnoli is CRC-32C's table: computed by the CPU where it can (FNV
// byte by byte was a sixth of the lean fleet's CPU, hashing 2.6 GB of
// names in a fresh storm).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// nameHash is the same in the benchmark's process and the fleet's.
func nameHash(name []byte) uint64 {
	return uint64(crc32.Checksum(name, castagnoli))
}

// expectOf is the digest by type URL of the resources of res, as a
// sidecar new to the stream receives them: every resource by name.
func expectOf(res *xdsapi.Resources) map[string]typeDigest {
	out := map[string]typeDigest{}
	add := func(typ, name string) {
		d := out[typ]
		d.add([]byte(name))
		out[typ] = d
	}
	for _, c := range res.Clusters {
		add(adsTypes[0], c.GetName())
	}
	for _, e := range res.Endpoints {
		add(adsTypes[1], e.GetClusterName())
	}
	for _, l := range res.Listeners {
		add(adsTypes[2], l.GetName())
	}
	for _, r := range res.Routes {
		add(adsTypes[3], r.GetName())
	}
	return out
}

// The fields of DeltaDiscoveryResponse and Resource the lean sidecar
// reads; all the others it skips. Every field of both is
// length-delimited.
var (
	respFields = (&discoveryv3.DeltaDiscoveryResponse{}).ProtoReflect().Descriptor().Fields()
	resFields  = (&discoveryv3.Resource{}).ProtoReflect().Descriptor().Fields()

	fieldSystemVersion = respFields.ByName("system_version_info").Number()
	fieldResources     = respFields.ByName("resources").Number()
	fieldTypeURL       = respFields.ByName("type_url").Number()
	fieldNonce         = respFields.ByName("nonce").Number()
	fieldRemoved       = respFields.ByName("removed_resources").Number()
	fieldResName       = resFields.ByName("name").Number()
	fieldResVersion    = resFields.ByName("version").Number()
	fieldResBody       = resFields.ByName("resource").Number()
)

// deltaResponse is what a lean sidecar keeps of a DeltaDiscoveryResponse:
// its envelope, and a digest of the names of its resources and of the
// names removed.
type deltaResponse struct {
	typeURL, nonce, version []byte
	resources, removed      typeDigest
}

// deltaDecoder reads gRPC length-prefixed DeltaDiscoveryResponses from
// the payloads of HTTP/2 DATA frames as they come, in pieces cut
// anywhere, without keeping a response whole: it walks the fields of a
// response and of each of its resources, collecting the few it needs and
// skipping the rest (a resource's body) where they lie.
type deltaDecoder struct {
	// depth is 0 between messages (reading a gRPC prefix), 1 in a
	// response, 2 in one of its resources; left[1] and left[2] are the
	// bytes left of the response and of the resource.
	depth int
	left  [3]int
	// head holds a gRPC prefix, or a field's tag and length, that
	// straddles two pieces.
	head []byte
	// skip is what is left of a field skipped; collect of a field
	// collected into *dst.
	skip, collect int
	dst           *[]byte
	// The response being read, and its resource being read.
	resp                deltaResponse
	resName, resVersion []byte
	resBody             bool
	removedName         []byte
	onResponse          func(*deltaResponse) error
}

var errTruncated = fmt.Errorf("%w: delta response: a field runs past its message", errWrongConfig)

// write decodes the next piece of the stream.
func (d *deltaDecoder) write(p []byte) error {
	for len(p) > 0 {
		switch {
		case d.skip > 0:
			n := min(d.skip, len(p))
			d.skip -= n
			d.consumed(n)
			p = p[n:]
		case d.collect > 0:
			n := min(d.collect, len(p))
			*d.dst = append(*d.dst, p[:n]...)
			d.collect -= n
			d.consumed(n)
			p = p[n:]
		case d.depth == 0:
			n := min(5-len(d.head), len(p))
			d.head = append(d.head, p[:n]...)
			p = p[n:]
			if len(d.head) < 5 {
				continue
			}
			if d.head[0] != 0 {
				return fmt.Errorf("%w: delta response: compressed gRPC message", errWrongConfig)
			}
			d.depth, d.left[1] = 1, int(binary.BigEndian.Uint32(d.head[1:5]))
			d.head = d.head[:0]
			d.resp.typeURL, d.resp.nonce, d.resp.version = d.resp.typeURL[:0], d.resp.nonce[:0], d.resp.version[:0]
			d.resp.resources, d.resp.removed = typeDigest{}, typeDigest{}
		default:
			n, err := d.field(p)
			if err != nil {
				return err
			}
			p = p[n:]
			if d.depth == 2 && d.skip == 0 && d.collect == 0 && len(d.head) == 0 && d.left[2] <= len(p) {
				// The whole resource is in this piece (most are): read
				// it in place.
				n := d.left[2]
				if err := d.resource(p[:n]); err != nil {
					return err
				}
				d.consumed(n)
				p = p[n:]
			}
		}
		if err := d.settle(); err != nil {
			return err
		}
	}
	return nil
}

// field reads a field's tag and length from p (after what head holds)
// and starts collecting or skipping its value; it returns the bytes of p
// it took.
func (d *deltaDecoder) field(p []byte) (int, error) {
	avail := p[:min(len(p), d.left[d.depth])]
	buf, held := avail, len(d.head)
	if held > 0 {
		buf = append(d.head, avail[:min(len(avail), 2*binary.MaxVarintLen64)]...)
	}
	num, typ, n := protowire.ConsumeTag(buf)
	var size uint64
	if n > 0 {
		if typ != protowire.BytesType {
			return 0, fmt.Errorf("%w: delta response: field %d of wire type %d", errWrongConfig, num, typ)
		}
		var m int
		size, m = protowire.ConsumeVarint(buf[n:])
		if m < 0 {
			n = m
		} else {
			n += m
		}
	}
	if n < 0 {
		if !errors.Is(protowire.ParseError(n), io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("%w: delta response: %w", errWrongConfig, protowire.ParseError(n))
		}
		// Straddles this piece and the next: keep what there is.
		d.head = append(d.head[:0], buf...)
		d.consumed(len(buf) - held)
		return len(buf) - held, nil
	}
	taken := n - held
	d.head = d.head[:0]
	d.consumed(taken)
	if size > uint64(d.left[d.depth]) {
		return 0, errTruncated
	}
	d.start(num, int(size))
	return taken, nil
}

// resource reads a whole resource's fields from b, as start and write
// would piece by piece. Its fields' tags are one byte (numbers under 16)
// and their lengths mostly too: read here without protowire's general
// path when so (that path was a sixth of the lean fleet's CPU).
func (d *deltaDecoder) resource(b []byte) error {
	for len(b) > 0 {
		num, typ, t := protowire.Number(b[0]>>3), protowire.Type(b[0]&7), 1
		if b[0] >= 0x80 {
			if num, typ, t = protowire.ConsumeTag(b); t < 0 {
				return fmt.Errorf("%w: delta response: a resource: %w", errWrongConfig, protowire.ParseError(t))
			}
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("%w: delta response: resource field %d of wire type %d", errWrongConfig, num, typ)
		}
		size, n := uint64(0), 0
		if len(b) > t && b[t] < 0x80 {
			size, n = uint64(b[t]), 1
		} else if size, n = protowire.ConsumeVarint(b[t:]); n < 0 {
			return fmt.Errorf("%w: delta response: a resource: %w", errWrongConfig, protowire.ParseError(n))
		}
		b = b[t+n:]
		if size > uint64(len(b)) {
			return errTruncated
		}
		v := b[:size]
		b = b[size:]
		switch num {
		case fieldResName:
			d.resName = append(d.resName[:0], v...)
		case fieldResVersion:
			d.resVersion = append(d.resVersion[:0], v...)
		case fieldResBody:
			d.resBody = len(v) > 0
		}
	}
	return nil
}

// start begins a field's value of size bytes.
func (d *deltaDecoder) start(num protowire.Number, size int) {
	d.dst = nil
	if d.depth == 1 {
		switch num {
		case fieldResources:
			d.depth, d.left[2] = 2, size
			d.resName, d.resVersion, d.resBody = d.resName[:0], d.resVersion[:0], false
			return
		case fieldSystemVersion:
			d.dst = &d.resp.version
		case fieldTypeURL:
			d.dst = &d.resp.typeURL
		case fieldNonce:
			d.dst = &d.resp.nonce
		case fieldRemoved:
			d.removedName = d.removedName[:0]
			d.dst = &d.removedName
		}
	} else {
		switch num {
		case fieldResName:
			d.dst = &d.resName
		case fieldResVersion:
			d.dst = &d.resVersion
		case fieldResBody:
			d.resBody = size > 0
		}
	}
	if d.dst == nil {
		d.skip = size
		return
	}
	*d.dst = (*d.dst)[:0]
	d.collect = size
}

// consumed counts n bytes read off the response and the resource being
// read.
func (d *deltaDecoder) consumed(n int) {
	for i := 1; i <= d.depth; i++ {
		d.left[i] -= n
	}
}

// settle finishes what the bytes read so far complete: a removed name, a
// resource, a response.
func (d *deltaDecoder) settle() error {
	if d.skip > 0 || d.collect > 0 || d.depth == 0 {
		return nil
	}
	if d.dst == &d.removedName {
		d.resp.removed.add(d.removedName)
		d.dst = nil
	}
	if d.depth == 2 && d.left[2] == 0 {
		if len(d.head) > 0 {
			return errTruncated
		}
		if len(d.resName) == 0 || len(d.resVersion) == 0 || !d.resBody {
			return fmt.Errorf("%w: delta response of %s: a resource without a name, version or body (name %q)", errWrongConfig, d.resp.typeURL, d.resName)
		}
		d.resp.resources.add(d.resName)
		d.depth = 1
	}
	if d.depth == 1 && d.left[1] == 0 {
		if len(d.head) > 0 {
			return errTruncated
		}
		d.depth = 0
		return d.onResponse(&d.resp)
	}
	return nil
}
