package protocols

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// DecodeConfig decodes a codec's JSON config (what a Factory receives)
// into v, a pointer to the codec's options struct, the same strict way for
// every codec, so a near miss is an error rather than an option silently
// ignored:
//   - nil, blank or null is no config: v is left as it is (the defaults);
//   - the config must be one JSON object, and nothing may follow it;
//   - every key, in nested objects too, must be a field of v's type spelled
//     exactly as its json tag (encoding/json alone would take "MaxFrameBytes"
//     for "maxFrameBytes"); the error names the key and the known fields;
//   - a value of the wrong type is an error naming the field and the type
//     it must have.
//
// Errors don't carry the codec's name: the codec wraps them
// (fmt.Errorf("dubbo: config: %w", err)).
func DecodeConfig(config []byte, v any) error {
	config = bytes.TrimSpace(config)
	if len(config) == 0 || bytes.Equal(config, []byte("null")) {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("DecodeConfig needs a non-nil pointer, got %T", v)
	}
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.UseNumber() // a number is checked against its field's type below, not float64
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return err
	}
	if rest := bytes.TrimSpace(config[dec.InputOffset():]); len(rest) > 0 {
		return fmt.Errorf("invalid character %q after the JSON object (offset %d)",
			rest[0], len(config)-len(rest))
	}
	if _, ok := tree.(map[string]any); !ok {
		return fmt.Errorf("got %s, want a JSON object", jsonKind(tree))
	}
	if err := checkKeys(tree, rv.Type().Elem(), ""); err != nil {
		return err
	}
	dec = json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) {
		return fmt.Errorf("field %q: got %s, want %s", te.Field, te.Value, describe(te.Type))
	}
	return err
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkKeys walks the decoded JSON value v against the Go type t it will
// be decoded into, refusing any object key that is not exactly a field.
func checkKeys(v any, t reflect.Type, path string) error {
	if t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil // the type reads its own JSON
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkKeys(v, t.Elem(), path)
	case reflect.Slice, reflect.Array:
		arr, _ := v.([]any)
		for i, e := range arr {
			if err := checkKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, _ := v.(map[string]any)
		for _, k := range sortedKeys(obj) {
			if err := checkKeys(obj[k], t.Elem(), joinPath(path, k)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		obj, _ := v.(map[string]any)
		fields := jsonFields(t)
		for _, k := range sortedKeys(obj) {
			ft, ok := fields[k]
			if !ok {
				return unknownField(joinPath(path, k), k, fields)
			}
			if err := checkKeys(obj[k], ft, joinPath(path, k)); err != nil {
				return err
			}
		}
	}
	// A value of another shape than t is left to the decoder's type error.
	return nil
}

// unknownField names the unknown key and what it may have meant.
func unknownField(path, key string, fields map[string]reflect.Type) error {
	known := sortedKeys(fields)
	for _, f := range known {
		if strings.EqualFold(f, key) {
			return fmt.Errorf("unknown field %q (did you mean %q?)", path, f)
		}
	}
	if len(known) == 0 {
		return fmt.Errorf("unknown field %q (the codec takes no options)", path)
	}
	return fmt.Errorf("unknown field %q (known: %s)", path, strings.Join(known, ", "))
}

// jsonFields maps the JSON names of struct t's fields, as encoding/json
// spells them, to their types; embedded structs' fields are promoted.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Tag.Get("json") == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			for n, typ := range jsonFields(ft) {
				if _, taken := out[n]; !taken {
					out[n] = typ
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// describe says in JSON terms what a value of type t looks like.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer in %d..%d", -1<<(t.Bits()-1), 1<<(t.Bits()-1)-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("an integer in 0..%d", uint64(1<<t.Bits()-1))
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "an object"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
