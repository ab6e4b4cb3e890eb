package dubbo

import (
	"github.com/metamesh/metamesh/protocols"
)

// A request body (DubboCodec.encodeRequestData) is, in hessian2: the
// dubbo version, the service path, the service version, the method name,
// the parameter-type descriptor, one value per parameter, then the
// attachments map.

// span is a [start, end) range of the scratch buffer.
type span struct{ start, end int }

// pair is one string attachment: key [k, v), value [v, end) in scratch.
type pair struct{ k, v, end int }

// scratchSize is the stack buffer attribute bytes are gathered in; larger
// requests spill to the heap (one more allocation).
const scratchSize = 512

// decodeRequest walks a hessian2 request body, fills msg's headers and
// records where the attachments sit.
func decodeRequest(frame []byte, msg *protocols.Message) error {
	var (
		stack    [scratchSize]byte
		pairsBuf [16]pair
	)
	scratch, pairs := stack[:0], pairsBuf[:0]
	r := reader{b: frame, pos: headerLen}

	// The dubbo version is not an attribute: check and skip it.
	if r.pos < len(frame) && (frame[r.pos] == 'N' || isStringTag(frame[r.pos])) {
		if err := r.skip(); err != nil {
			return err
		}
	} else {
		return r.errorf("expected the %s string", bodyFields[0])
	}
	var spans [4]span // unused, service, version, method
	for i := 1; i < len(spans); i++ {
		start := len(scratch)
		var ok bool
		var err error
		if scratch, ok, err = r.appendString(scratch); err != nil {
			return err
		} else if !ok {
			return r.errorf("expected the %s string", bodyFields[i])
		}
		spans[i] = span{start, len(scratch)}
	}

	descStart := len(scratch)
	scratch, ok, err := r.appendString(scratch)
	if err != nil {
		return err
	} else if !ok {
		return r.errorf("expected the %s string", "parameter types")
	}
	nargs := countArgs(scratch[descStart:])
	scratch = scratch[:descStart]
	for i := 0; i < nargs; i++ {
		if err := r.skip(); err != nil {
			return err
		}
	}

	// Attachments: a map, null, or nothing at all.
	msg.Marks[markAttStart] = r.pos
	hasVersion := spans[2].end > spans[2].start
	if r.pos < len(frame) {
		switch tag := frame[r.pos]; tag {
		case 'N':
			r.pos++
			msg.Marks[markAttEntries] = msg.Marks[markAttStart]
		case 'H', 'M':
			r.pos++
			if tag == 'M' {
				if err := r.skipType(); err != nil {
					return err
				}
			}
			msg.Marks[markAttEntries] = r.pos
			if scratch, pairs, err = readAttachments(&r, scratch, pairs, hasVersion); err != nil {
				return err
			}
		default:
			return r.errorf("attachments are not a map (tag 0x%02x)", tag)
		}
	} else {
		msg.Marks[markAttEntries] = r.pos
	}
	msg.Marks[markAttEnd] = r.pos

	// One string holds every attribute; headers are slices of it.
	s := string(scratch)
	svc := s[spans[1].start:spans[1].end]
	h := &msg.Headers
	h.Add("service", svc)
	h.Add("interface", svc)
	h.Add("method", s[spans[3].start:spans[3].end])
	if hasVersion {
		h.Add("version", s[spans[2].start:spans[2].end])
	}
	for _, p := range pairs {
		h.Add(s[p.k:p.v], s[p.v:p.end])
	}
	return nil
}

var bodyFields = [...]string{"dubbo version", "service path", "service version", "method name"}

// readAttachments walks map entries up to and including 'Z', gathering
// string-valued entries whose keys the body does not already provide.
func readAttachments(r *reader, scratch []byte, pairs []pair, hasVersion bool) ([]byte, []pair, error) {
	for {
		if r.pos >= len(r.b) {
			return scratch, pairs, r.truncated()
		}
		tag := r.b[r.pos]
		if tag == 'Z' {
			r.pos++
			return scratch, pairs, nil
		}
		if !isStringTag(tag) { // a key of another type: not an attribute
			if err := r.skip(); err != nil {
				return scratch, pairs, err
			}
			if err := r.skip(); err != nil {
				return scratch, pairs, err
			}
			continue
		}
		k := len(scratch)
		var err error
		if scratch, _, err = r.appendString(scratch); err != nil {
			return scratch, pairs, err
		}
		v := len(scratch)
		if r.pos < len(r.b) && isStringTag(r.b[r.pos]) && !bodyKey(scratch[k:v], hasVersion) {
			if scratch, _, err = r.appendString(scratch); err != nil {
				return scratch, pairs, err
			}
			pairs = append(pairs, pair{k, v, len(scratch)})
			continue
		}
		scratch = scratch[:k]
		if err := r.skip(); err != nil {
			return scratch, pairs, err
		}
	}
}

// bodyKey reports whether an attachment key names an attribute taken from
// the body, which wins over the attachment.
func bodyKey(k []byte, hasVersion bool) bool {
	switch string(k) {
	case "service", "interface", "method":
		return true
	case "version":
		return hasVersion
	}
	return false
}

// countArgs counts the parameter types in a JVM descriptor the way Dubbo
// does (ReflectUtils.desc2classArray, dubbo-go's DescRegex): every
// leftmost match of a primitive, a class "Lpkg/Name;" or an array of
// either, skipping bytes that start no match.
func countArgs(desc []byte) int {
	n := 0
	for i := 0; i < len(desc); {
		if l := matchDesc(desc[i:]); l > 0 {
			n++
			i += l
		} else {
			i++
		}
	}
	return n
}

// matchDesc returns the length of the descriptor at the start of d, or 0.
func matchDesc(d []byte) int {
	i := 0
	for i < len(d) && d[i] == '[' {
		i++
	}
	if i == len(d) {
		return 0
	}
	switch d[i] {
	case 'V', 'Z', 'B', 'C', 'D', 'F', 'I', 'J', 'S':
		return i + 1
	case 'L':
		if l := matchClass(d[i+1:]); l > 0 {
			return i + 1 + l
		}
	}
	return 0
}

// matchClass matches `ident(/ident)*;` and returns its length, or 0.
func matchClass(d []byte) int {
	i := 0
	for {
		if i >= len(d) || !identStart(d[i]) {
			return 0
		}
		i++
		for i < len(d) && identPart(d[i]) {
			i++
		}
		if i >= len(d) {
			return 0
		}
		switch d[i] {
		case ';':
			return i + 1
		case '/':
			i++
		default:
			return 0
		}
	}
}

// identChars classifies bytes of Java identifiers: 1 may start one, 2
// may only continue one.
var identChars = func() (t [256]byte) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = 1, 1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 2
	}
	t['_'], t['$'] = 1, 1
	return t
}()

func identStart(c byte) bool { return identChars[c] == 1 }

func identPart(c byte) bool { return identChars[c] != 0 }
