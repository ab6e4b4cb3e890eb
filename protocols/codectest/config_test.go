package codectest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/codectest"
)

// tinyOptions are the options of the tiny codec's factories.
type tinyOptions struct {
	Greeting *string `json:"greeting"`
	Verbose  bool    `json:"verbose"`
}

const tinyOptionsJSON = `{"greeting": "hi", "verbose": true}`

// newTiny is a good factory: it decodes with protocols.DecodeConfig.
func newTiny(cfg []byte) (protocols.Codec, error) {
	var o tinyOptions
	if err := protocols.DecodeConfig(cfg, &o); err != nil {
		return nil, fmt.Errorf("tiny: config: %w", err)
	}
	return &tiny{}, nil
}

// Factories broken in one way each.
var (
	// lenientTiny decodes with encoding/json alone, as examples/lprpc
	// did: it refuses unknown keys but takes a key in another case and
	// anything after the object.
	lenientTiny = func(cfg []byte) (protocols.Codec, error) {
		var o tinyOptions
		dec := json.NewDecoder(strings.NewReader(string(cfg)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil && len(strings.TrimSpace(string(cfg))) > 0 {
			return nil, err
		}
		return &tiny{}, nil
	}
	// deafTiny ignores its config.
	deafTiny = func([]byte) (protocols.Codec, error) { return &tiny{}, nil }
	// vagueTiny refuses a bad config without saying what is wrong.
	vagueTiny = func(cfg []byte) (protocols.Codec, error) {
		if _, err := newTiny(cfg); err != nil {
			return nil, errors.New("tiny: bad config")
		}
		return &tiny{}, nil
	}
	// fussyTiny refuses even the defaults.
	fussyTiny = func([]byte) (protocols.Codec, error) { return nil, errors.New("tiny: config required") }
	// panickyTiny panics on a config it doesn't like.
	panickyTiny = func(cfg []byte) (protocols.Codec, error) {
		c, err := newTiny(cfg)
		if err != nil {
			panic(err)
		}
		return c, nil
	}
)

// TestConfigCheck runs the kit's config check on broken factories: each
// must fail it, saying what is wrong.
func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		factory protocols.Factory
		options string
		says    string
	}{
		{"no factory", nil, "", "Suite.Factory is nil"},
		{"case near miss taken", lenientTiny, tinyOptionsJSON, `Factory({"Greeting":"hi","verbose":true}) built a codec`},
		{"trailing data taken", lenientTiny, tinyOptionsJSON, `Factory(` + tinyOptionsJSON + ` {}) built a codec`},
		{"unknown option taken", deafTiny, "", `Factory({"` + codectest.UnknownOption + `": true}) built a codec`},
		{"error not naming the option", vagueTiny, "", `want an error naming "` + codectest.UnknownOption + `"`},
		{"error not naming the near miss", vagueTiny, tinyOptionsJSON, `want an error naming "Verbose"`},
		{"defaults refused", fussyTiny, "", "want the defaults"},
		{"panic", panickyTiny, "", "panicked"},
		{"invalid Options", newTiny, `{"greting": "hi"}`, "Suite.Options must be valid"},
		{"Options not an object", newTiny, `[]`, "is not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tinySuite(&tiny{})
			s.Factory = tc.factory
			s.Options = []byte(tc.options)
			if tc.options == "" {
				s.Options = nil
			}
			failures := run(s)
			for _, f := range failures {
				if strings.HasPrefix(f, "config: ") && strings.Contains(f, tc.says) {
					t.Logf("the kit said: %.600s", f)
					return
				}
			}
			t.Errorf("no failure of config saying %q; the kit said:\n%s", tc.says, strings.Join(failures, "\n"))
		})
	}
}
