package protocols

// Header is one attribute: a key and its string value.
type Header struct {
	Key, Value string
}

// Headers is a small ordered attribute map. Lookups are linear: a frame
// carries a handful of attributes, and a slice scan beats hashing at that
// size while costing no allocation once its storage has grown.
type Headers struct {
	kv []Header
}

// Get returns the value of key and whether it is present. Keys are
// case-sensitive: codecs keep the case their peers used.
func (h *Headers) Get(key string) (string, bool) {
	for i := range h.kv {
		if h.kv[i].Key == key {
			return h.kv[i].Value, true
		}
	}
	return "", false
}

// Set replaces the value of key, or appends it.
func (h *Headers) Set(key, value string) {
	for i := range h.kv {
		if h.kv[i].Key == key {
			h.kv[i].Value = value
			return
		}
	}
	h.kv = append(h.kv, Header{key, value})
}

// Add appends key without looking for an existing entry. Decoders use it
// when they know keys are distinct, to skip the scan.
func (h *Headers) Add(key, value string) {
	h.kv = append(h.kv, Header{key, value})
}

// Del removes key if present.
func (h *Headers) Del(key string) {
	for i := range h.kv {
		if h.kv[i].Key == key {
			last := len(h.kv) - 1
			copy(h.kv[i:], h.kv[i+1:])
			h.kv[last] = Header{} // drop the string references
			h.kv = h.kv[:last]
			return
		}
	}
}

// Len returns the number of attributes.
func (h *Headers) Len() int { return len(h.kv) }

// All returns the attributes in decode order. The slice is owned by h.
func (h *Headers) All() []Header { return h.kv }

// Reset empties h, keeping its storage.
func (h *Headers) Reset() {
	clear(h.kv)
	h.kv = h.kv[:0]
}
