package config

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// onlyFields refuses any populated field of m outside allowed. Envoy's
// types carry many HTTP-only fields; a meta-protocol proxy can't honour
// them, and silently ignoring one would route traffic other than the
// operator meant, so the resource is refused with the field's path.
func onlyFields(m proto.Message, path string, allowed ...string) error {
	var bad string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		name := string(fd.Name())
		for _, a := range allowed {
			if a == name {
				return true
			}
		}
		bad = name
		return false
	})
	if bad != "" {
		return fmt.Errorf("%s.%s: not supported by a meta-protocol proxy", path, bad)
	}
	return nil
}
