package xds

import (
	"errors"
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
// per resource (diffFromRecords).
type deltaRequest struct {
	*discoveryv3.DeltaDiscoveryRequest
	initial []byte // initial_resource_versions' records, tags included; nil: none
}

// initialField is initial_resource_versions' field number.
var initialField = (&discoveryv3.DeltaDiscoveryRequest{}).ProtoReflect().Descriptor().Fields().ByName("initial_resource_versions").Number()

// decodeDelta decodes b into r: initial_resource_versions' records are
// checked (well-formed, names and versions UTF-8, as protobuf's decoder
// would) and copied to r.initial, the rest decoded by protobuf.
func decodeDelta(b []byte, r *deltaRequest) error {
	var rest, initial []byte
	for in := b; len(in) > 0; {
		num, typ, n := protowire.ConsumeTag(in)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, in[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		field := in[:n+m]
		in = in[n+m:]
		if num != initialField || typ != protowire.BytesType {
			rest = append(rest, field...)
			continue
		}
		if _, _, err := versionRecord(field[n:], true); err != nil {
			return err
		}
		initial = append(initial, field...)
	}
	if r.DeltaDiscoveryRequest == nil {
		r.DeltaDiscoveryRequest = &discoveryv3.DeltaDiscoveryRequest{}
	}
	if initial == nil {
		return proto.Unmarshal(b, r.DeltaDiscoveryRequest)
	}
	r.initial = initial
	return proto.Unmarshal(rest, r.DeltaDiscoveryRequest)
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

// diffFromRecords is what a proxy holding the resources named in records
// (a deltaRequest's initial, checked by decodeDelta) lacks of t. A name
// named twice counts with its last version, as in a protobuf map.
func (t *table) diffFromRecords(records []byte) *tableDiff {
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
