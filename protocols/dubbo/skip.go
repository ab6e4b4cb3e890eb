package dubbo

// skip skips one value of any type, following the whole hessian2 grammar.
func (r *reader) skip() error {
	for {
		tag, err := r.u8()
		if err != nil {
			return err
		}
		switch {
		case tag <= 0x1f, tag >= 0x30 && tag <= 0x33, tag == 'R', tag == 'S':
			return r.skipStringChunks(tag)
		case tag >= 0x20 && tag <= 0x2f, tag >= 0x34 && tag <= 0x37, tag == 'A', tag == 'B':
			return r.skipBinaryChunks(tag)
		case tag >= 0x38 && tag <= 0x3f: // long, 3 bytes
			return r.skipN(2)
		case tag >= 0x60 && tag <= 0x6f: // object, compact definition index
			return r.skipObject(int(tag - 0x60))
		case tag >= 0x70 && tag <= 0x77: // typed list, length 0-7
			if err := r.skipType(); err != nil {
				return err
			}
			return r.skipValues(int(tag - 0x70))
		case tag >= 0x78 && tag <= 0x7f: // untyped list, length 0-7
			return r.skipValues(int(tag - 0x78))
		case tag >= 0x80 && tag <= 0xbf, tag >= 0xd8 && tag <= 0xef: // int, long: 1 byte
			return nil
		case tag >= 0xc0 && tag <= 0xcf, tag >= 0xf0: // int, long: 2 bytes
			return r.skipN(1)
		case tag >= 0xd0 && tag <= 0xd7: // int, 3 bytes
			return r.skipN(2)
		}
		switch tag {
		case 'N', 'T', 'F', 0x5b, 0x5c: // null, booleans, double 0.0 and 1.0
			return nil
		case 0x5d: // double as byte
			return r.skipN(1)
		case 0x5e: // double as short
			return r.skipN(2)
		case 'I', 'Y', 0x4b, 0x5f: // int, long as int, date in minutes, double as float
			return r.skipN(4)
		case 'D', 'L', 0x4a: // double, long, date in milliseconds
			return r.skipN(8)
		case 'C': // a class definition, then the value that uses it
			if err := r.classDef(); err != nil {
				return err
			}
			continue
		case 'O':
			idx, err := r.readInt()
			if err != nil {
				return err
			}
			return r.skipObject(int(idx))
		case 'Q': // back reference
			_, err := r.readInt()
			return err
		case 'H':
			return r.skipMapEntries()
		case 'M':
			if err := r.skipType(); err != nil {
				return err
			}
			return r.skipMapEntries()
		case 'U': // typed list, variable length
			if err := r.skipType(); err != nil {
				return err
			}
			return r.skipUntilEnd()
		case 'V': // typed list, fixed length
			if err := r.skipType(); err != nil {
				return err
			}
			n, err := r.readCount()
			if err != nil {
				return err
			}
			return r.skipValues(n)
		case 'W': // untyped list, variable length
			return r.skipUntilEnd()
		case 'X': // untyped list, fixed length
			n, err := r.readCount()
			if err != nil {
				return err
			}
			return r.skipValues(n)
		}
		r.pos--
		return r.errorf("unexpected tag 0x%02x", tag)
	}
}

func (r *reader) enter() error {
	if r.depth >= maxDepth {
		return r.errorf("values nested deeper than %d", maxDepth)
	}
	r.depth++
	return nil
}

// skipValues skips n values (list elements or object fields).
func (r *reader) skipValues(n int) error {
	if n > len(r.b)-r.pos {
		return r.truncated()
	}
	if err := r.enter(); err != nil {
		return err
	}
	for ; n > 0; n-- {
		if err := r.skip(); err != nil {
			return err
		}
	}
	r.depth--
	return nil
}

// skipUntilEnd skips list elements up to and including the closing 'Z'.
func (r *reader) skipUntilEnd() error { return r.skipValuesUntilEnd(1) }

// skipMapEntries skips key/value pairs up to and including the closing 'Z'.
func (r *reader) skipMapEntries() error { return r.skipValuesUntilEnd(2) }

// skipValuesUntilEnd skips groups of perEntry values until the closing 'Z'.
func (r *reader) skipValuesUntilEnd(perEntry int) error {
	if err := r.enter(); err != nil {
		return err
	}
	for {
		if r.pos >= len(r.b) {
			return r.truncated()
		}
		if r.b[r.pos] == 'Z' {
			r.pos++
			r.depth--
			return nil
		}
		for range perEntry {
			if err := r.skip(); err != nil {
				return err
			}
		}
	}
}

// classDef reads a class definition after its 'C': the type name, the
// field count, the field names. Only the count matters to the walk.
func (r *reader) classDef() error {
	tag, err := r.u8()
	if err != nil {
		return err
	}
	if err := r.skipStringChunks(tag); err != nil {
		return err
	}
	n, err := r.readCount()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		tag, err := r.u8()
		if err != nil {
			return err
		}
		if err := r.skipStringChunks(tag); err != nil {
			return err
		}
	}
	if r.ncls < len(r.cls) {
		r.cls[r.ncls] = int32(n)
	} else {
		r.more = append(r.more, int32(n))
	}
	r.ncls++
	return nil
}

// skipObject skips the fields of an instance of class definition idx.
func (r *reader) skipObject(idx int) error {
	if idx < 0 || idx >= r.ncls {
		return r.errorf("object of undefined class %d", idx)
	}
	n := 0
	if idx < len(r.cls) {
		n = int(r.cls[idx])
	} else {
		n = int(r.more[idx-len(r.cls)])
	}
	return r.skipValues(n)
}
