package protocols_test

import (
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols"
)

// duration reads its own JSON (a string like "1s"): DecodeConfig leaves
// the keys of such types to them.
type duration struct{ time.Duration }

func (d *duration) UnmarshalJSON(b []byte) error {
	v, err := time.ParseDuration(strings.Trim(string(b), `"`))
	d.Duration = v
	return err
}

type limits struct {
	MaxBytes *int64 `json:"maxBytes"`
}

type common struct {
	Tag string `json:"tag"`
}

// options is a codec's options struct with every shape DecodeConfig walks.
type options struct {
	common                       // promoted: "tag"
	MaxFrameBytes *int64         `json:"maxFrameBytes"`
	Small         uint8          `json:"small"`
	Methods       []string       `json:"methods"`
	Upstream      *limits        `json:"upstream"`
	Routes        []limits       `json:"routes"`
	ByName        map[string]any `json:"byName"`
	Per           map[string]limits
	Timeout       duration `json:"timeout"`
	Ignored       string   `json:"-"`
	hidden        int
}

func TestDecodeConfig(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		want         string // "" for success, else what the error says
		check        func(o options) bool
	}{
		{"nil", "", "", func(o options) bool { return o.MaxFrameBytes == nil && o.Small == 7 }},
		{"blank", " \n\t", "", func(o options) bool { return o.Small == 7 }},
		{"null", " null ", "", func(o options) bool { return o.Small == 7 }},
		{"empty object", "{}", "", func(o options) bool { return o.Small == 7 && o.Methods == nil }},
		{"fields", `{"maxFrameBytes": 1024, "small": 3, "methods": ["a"], "tag": "t", "timeout": "2s"}`, "",
			func(o options) bool {
				return o.hidden == 0 && *o.MaxFrameBytes == 1024 && o.Small == 3 && o.Methods[0] == "a" && o.Tag == "t" && o.Timeout.Duration == 2*time.Second
			}},
		{"nested objects", `{"upstream": {"maxBytes": 5}, "routes": [{"maxBytes": 6}], "Per": {"x": {"maxBytes": 7}}, "byName": {"Any": {"Thing": 1}}}`, "",
			func(o options) bool {
				return *o.Upstream.MaxBytes == 5 && *o.Routes[0].MaxBytes == 6 && *o.Per["x"].MaxBytes == 7
			}},
		{"null field", `{"maxFrameBytes": null}`, "", func(o options) bool { return o.MaxFrameBytes == nil }},

		{"unknown field", `{"timeoutMs": 5}`, `unknown field "timeoutMs" (known: Per, byName, maxFrameBytes, methods, routes, small, tag, timeout, upstream)`, nil},
		{"case near miss", `{"MaxFrameBytes": 5}`, `unknown field "MaxFrameBytes" (did you mean "maxFrameBytes"?)`, nil},
		{"both spellings", `{"maxFrameBytes": 5, "maxframebytes": 6}`, `unknown field "maxframebytes"`, nil},
		{"json:\"-\" field", `{"Ignored": "x"}`, `unknown field "Ignored"`, nil},
		{"unexported field", `{"hidden": 1}`, `unknown field "hidden"`, nil},
		{"unknown nested", `{"upstream": {"maxBytes": 5, "minBytes": 1}}`, `unknown field "upstream.minBytes" (known: maxBytes)`, nil},
		{"unknown in array", `{"routes": [{"maxBytes": 1}, {"maxbytes": 2}]}`, `unknown field "routes[1].maxbytes"`, nil},
		{"unknown in map value", `{"Per": {"x": {"max": 2}}}`, `unknown field "Per.x.max"`, nil},

		{"trailing object", `{} {}`, `invalid character '{' after the JSON object (offset 3)`, nil},
		{"trailing garbage", `{"small": 1}x`, `invalid character 'x' after the JSON object`, nil},
		{"not an object", `[1]`, "got an array, want a JSON object", nil},
		{"a string", `"small"`, "got a string, want a JSON object", nil},
		{"syntax", `{"small": }`, "invalid character '}'", nil},
		{"truncated", `{"small": 1`, "unexpected EOF", nil},

		{"string for integer", `{"maxFrameBytes": "big"}`, `field "maxFrameBytes": got string, want an integer in -9223372036854775808..9223372036854775807`, nil},
		{"fraction for integer", `{"maxFrameBytes": 1.5}`, `field "maxFrameBytes": got number 1.5, want an integer`, nil},
		{"out of range", `{"small": 256}`, `field "small": got number 256, want an integer in 0..255`, nil},
		{"string for array", `{"methods": "a"}`, `field "methods": got string, want an array`, nil},
		{"nested type", `{"upstream": {"maxBytes": true}}`, `field "upstream.maxBytes": got bool, want an integer`, nil},
		{"array for object", `{"upstream": [1]}`, `field "upstream": got array, want an object`, nil},
		{"own decoder's error", `{"timeout": "soon"}`, `invalid duration "soon"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options{Small: 7}
			err := protocols.DecodeConfig([]byte(tc.config), &o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("DecodeConfig(%s): %v", tc.config, err)
			case tc.want == "" && !tc.check(o):
				t.Fatalf("DecodeConfig(%s) decoded %+v", tc.config, o)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("DecodeConfig(%s) = %v; want an error with %q", tc.config, err, tc.want)
			}
		})
	}
}

func TestDecodeConfigNoOptions(t *testing.T) {
	var none struct{}
	if err := protocols.DecodeConfig([]byte(`{}`), &none); err != nil {
		t.Fatal(err)
	}
	err := protocols.DecodeConfig([]byte(`{"a": 1}`), &none)
	if err == nil || !strings.Contains(err.Error(), `unknown field "a" (the codec takes no options)`) {
		t.Fatalf("got %v", err)
	}
	if err := protocols.DecodeConfig([]byte(`{}`), none); err == nil || !strings.Contains(err.Error(), "pointer") {
		t.Fatalf("a non-pointer: %v", err)
	}
}
