package dubbo

import (
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// Mutation rewrites the attachments map: the entries the frame had, in
// order and byte for byte (non-string values included), except those
// whose keys set overrides, then the entries of set. Everything before
// and after the map is copied unchanged. The caller patches the ID and
// the body length.

// encodeRequest appends a request with set merged into its attachments,
// using the positions Decode recorded in msg.Marks.
func encodeRequest(dst []byte, msg *protocols.Message, set []protocols.Header) ([]byte, error) {
	raw := msg.Raw
	st, en, end := msg.Marks[markAttStart], msg.Marks[markAttEntries], msg.Marks[markAttEnd]
	if st < headerLen || st > en || en > end || end > len(raw) || (en > st && raw[end-1] != 'Z') {
		return dst, fmt.Errorf("dubbo: encode: message was not decoded by this codec")
	}
	dst = append(dst, raw[:st]...)
	if en == st { // null or absent: a new map takes its place
		dst = append(dst, 'H')
	} else {
		dst = append(dst, raw[st:en]...)
		// Entries rarely hold objects; when they do, their class
		// definitions sit earlier in the body, so walk it all again.
		mark := len(dst)
		r := reader{b: raw[:end], pos: en}
		var err error
		if dst, err = keepEntries(dst, &r, set); err != nil {
			r, err = reader{b: raw[:end], pos: headerLen}, nil
			for r.pos < st && err == nil {
				err = r.skip()
			}
			if err != nil || r.pos != st {
				return dst[:mark], fmt.Errorf("dubbo: encode: body walk does not reach the attachments: %v", err)
			}
			r.pos = en
			if dst, err = keepEntries(dst[:mark], &r, set); err != nil {
				return dst, err
			}
		}
		if r.pos != end {
			return dst, fmt.Errorf("dubbo: encode: attachments end at %d, not %d", r.pos, end)
		}
	}
	dst = appendSet(dst, set)
	dst = append(dst, 'Z')
	return append(dst, raw[end:]...), nil
}

// encodeResponse appends an OK hessian2 response with set merged into its
// attachments; a response without them is switched to the
// *_WITH_ATTACHMENTS flag and gets a map after its value.
func encodeResponse(dst []byte, raw []byte, set []protocols.Header) ([]byte, error) {
	r := reader{b: raw, pos: headerLen}
	flag, err := r.readInt()
	if err != nil {
		return dst, err
	}
	flagEnd := r.pos
	if flag < respWithException || flag > respNullValueWithAttachments {
		return dst, fmt.Errorf("dubbo: encode: unknown response flag %d", flag)
	}
	if flag != respNullValue && flag != respNullValueWithAttachments {
		if err := r.skip(); err != nil {
			return dst, err
		}
	}
	mapStart := r.pos
	newFlag := flag
	if flag <= respNullValue {
		newFlag += respWithExceptionWithAttachments
	}
	dst = append(dst, raw[:headerLen]...)
	dst = append(dst, byte(0x90+newFlag)) // compact int
	dst = append(dst, raw[flagEnd:mapStart]...)
	if flag <= respNullValue || mapStart == len(raw) || raw[mapStart] == 'N' {
		// No map yet: a new one goes right after the value, in place of
		// a null map. Whatever followed stays (dubbo-go ends every
		// response body with an extra null).
		after := mapStart
		if flag > respNullValue && after < len(raw) {
			after++
		}
		dst = append(dst, 'H')
		dst = appendSet(dst, set)
		dst = append(dst, 'Z')
		return append(dst, raw[after:]...), nil
	}
	switch raw[mapStart] {
	case 'H':
		r.pos++
	case 'M':
		r.pos++
		if err := r.skipType(); err != nil {
			return dst, err
		}
	default:
		return dst, r.errorf("response attachments are not a map (tag 0x%02x)", raw[mapStart])
	}
	dst = append(dst, raw[mapStart:r.pos]...)
	if dst, err = keepEntries(dst, &r, set); err != nil {
		return dst, err
	}
	dst = appendSet(dst, set)
	dst = append(dst, 'Z')
	return append(dst, raw[r.pos:]...), nil
}

// keepEntries walks map entries from r.pos through the closing 'Z',
// appending the raw bytes of each entry whose key set does not override.
func keepEntries(dst []byte, r *reader, set []protocols.Header) ([]byte, error) {
	for {
		if r.pos >= len(r.b) {
			return dst, r.truncated()
		}
		if r.b[r.pos] == 'Z' {
			r.pos++
			return dst, nil
		}
		start := r.pos
		var kb [64]byte
		key, isStr := kb[:0], isStringTag(r.b[r.pos])
		var err error
		if isStr {
			key, _, err = r.appendString(key)
		} else {
			err = r.skip()
		}
		if err == nil {
			err = r.skip()
		}
		if err != nil {
			return dst, err
		}
		if isStr && overridden(key, set) {
			continue
		}
		dst = append(dst, r.b[start:r.pos]...)
	}
}

func overridden(key []byte, set []protocols.Header) bool {
	for i := range set {
		if string(key) == set[i].Key {
			return true
		}
	}
	return false
}

// appendSet appends the entries of set as string pairs; of two entries
// with one key, the later wins.
func appendSet(dst []byte, set []protocols.Header) []byte {
next:
	for i, h := range set {
		for _, later := range set[i+1:] {
			if later.Key == h.Key {
				continue next
			}
		}
		dst = putString(dst, h.Key)
		dst = putString(dst, h.Value)
	}
	return dst
}
