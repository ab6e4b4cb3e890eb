package protocols

import (
	"fmt"
	"sort"
	"sync"
)

// Factory builds a codec from its configuration: the JSON form of the
// listener's codec config (an ApplicationProtocol's codecConfig), or nil
// for defaults. A factory rejects unknown or invalid options with an error
// naming the option.
type Factory func(config []byte) (Codec, error)

var registry = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{}}

// Register makes a codec available under name. It refuses an empty name,
// a nil factory and a name already taken.
func Register(name string, f Factory) error {
	if name == "" || f == nil {
		return fmt.Errorf("protocols: register %q: empty name or nil factory", name)
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[name]; dup {
		return fmt.Errorf("protocols: codec %q is already registered", name)
	}
	registry.m[name] = f
	return nil
}

// MustRegister is Register for init functions: it panics on a refusal,
// because two codecs claiming one name is a build mistake.
func MustRegister(name string, f Factory) {
	if err := Register(name, f); err != nil {
		panic(err)
	}
}

// New builds the codec registered under name.
func New(name string, config []byte) (Codec, error) {
	registry.RLock()
	f, ok := registry.m[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("protocols: unknown codec %q (registered: %v)", name, Names())
	}
	return f(config)
}

// Names lists the registered codec names in order.
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
