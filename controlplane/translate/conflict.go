package translate

import "github.com/metamesh/metamesh/crds/v1alpha1"

// Conflict is a claim refused because an older object holds it: a host, a
// port, a host's DestinationPolicy or MetaRouter, a protocol name. The
// refused object's Accepted condition says the same, with reason Conflict.
// A MetaRouter whose global rate limit names a service no ServiceEntry
// defines is refused the same way, with no holder (and reason
// UnknownHost or UnknownSubset in its conditions).
type Conflict struct {
	// Key is the refused object's (see Key).
	Key string
	// Field is the path of the claim in that object: spec.hosts[1].
	Field string
	// Reason says what is taken and by which object.
	Reason string
	// Holder is the Key of the object in force; empty when the name is a
	// built-in protocol's, or for a rate limit's unknown service.
	Holder string
}

// Conflicts returns every conflict among the objects of in, each on the
// newer object (opts.Older, or ByAge), without building resources. File
// mode refuses a config that has any.
func Conflicts(in *Input, opts Options) []Conflict {
	t := newTranslation(in, opts)
	t.resolve()
	return t.conflicts
}

// conflict refuses the claim at field of the object key, held by holder.
func (t *translation) conflict(key, field, holder, reason string) {
	t.reject(key, v1alpha1.ReasonConflict, field+": "+reason)
	t.conflicts = append(t.conflicts, Conflict{Key: key, Field: field, Reason: reason, Holder: holder})
}
