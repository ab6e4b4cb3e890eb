package codectest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"unicode"

	"github.com/metamesh/metamesh/protocols"
)

// UnknownOption is the key of the option no codec has, which the config
// check gives a codec's factory.
const UnknownOption = "codectestUnknownOption"

// config checks that the factory builds the defaults from no config and
// refuses an unknown option and near misses of the known ones, each with
// an error naming the key (protocols.DecodeConfig does all of it).
func (k *kit) config(t T) {
	if k.s.Factory == nil {
		t.Fatalf("codectest: Suite.Factory is nil: the kit needs the codec's factory to check it refuses unknown options")
	}
	for _, cfg := range []string{"", "{}"} {
		if _, p, err := k.build([]byte(cfg)); p != nil {
			t.Errorf("Factory(%#q) panicked: %v", cfg, p)
		} else if err != nil {
			t.Errorf("Factory(%#q) = %v; want the defaults", cfg, err)
		}
	}
	k.refused(t, fmt.Sprintf(`{%q: true}`, UnknownOption), UnknownOption)
	if k.s.Options == nil {
		return
	}
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(k.s.Options, &opts); err != nil || len(opts) == 0 {
		t.Fatalf("codectest: Suite.Options %s is not a JSON object with an option: %v", k.s.Options, err)
	}
	if _, p, err := k.build(k.s.Options); p != nil || err != nil {
		t.Fatalf("Factory(%s) = %v (panic: %v); want a codec: Suite.Options must be valid", k.s.Options, err, p)
	}
	keys := make([]string, 0, len(opts))
	for key := range opts {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		miss := flipCase(key)
		near := make(map[string]json.RawMessage, len(opts))
		for k, v := range opts {
			near[k] = v
		}
		delete(near, key)
		near[miss] = opts[key]
		cfg, err := json.Marshal(near)
		if err != nil {
			t.Fatalf("codectest: %v", err)
		}
		k.refused(t, string(cfg), miss)
	}
	k.refused(t, string(k.s.Options)+" {}", "")
}

// refused checks that the factory refuses cfg with an error naming want.
func (k *kit) refused(t T, cfg, want string) {
	t.Helper()
	_, p, err := k.build([]byte(cfg))
	switch {
	case p != nil:
		t.Errorf("Factory(%s) panicked: %v", cfg, p)
	case err == nil:
		t.Errorf("Factory(%s) built a codec; want an error: a near miss must not be ignored (use protocols.DecodeConfig)", cfg)
	case !strings.Contains(err.Error(), want):
		t.Errorf("Factory(%s) = %v; want an error naming %q", cfg, err, want)
	}
}

// build calls the factory, turning a panic into a value.
func (k *kit) build(cfg []byte) (c protocols.Codec, p *panicked, err error) {
	defer func() {
		if v := recover(); v != nil {
			p = &panicked{v, debug.Stack()}
		}
	}()
	c, err = k.s.Factory(bytes.Clone(cfg))
	return c, nil, err
}

// flipCase returns key with its first letter's case changed, or all upper
// case when it starts with no letter: a near miss encoding/json alone
// would accept.
func flipCase(key string) string {
	for i, r := range key {
		if !unicode.IsLetter(r) {
			continue
		}
		f := unicode.ToUpper(r)
		if unicode.IsUpper(r) {
			f = unicode.ToLower(r)
		}
		return key[:i] + string(f) + key[i+len(string(r)):]
	}
	return strings.ToUpper(key) + "_"
}
