package file

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Problem is one reason a config folder can't be applied, located as
// precisely as the input allows.
type Problem struct {
	// File is the file's path relative to the folder (the folder itself for
	// a problem reading it).
	File string
	// Document is the 1-based position of the YAML document in File; 0 when
	// the problem is about the whole file.
	Document int
	// Kind, Namespace and Name identify the object, when it got that far.
	Kind, Namespace, Name string
	// Field is the path of the offending field (spec.routes[0].route); empty
	// when the problem is not about one field.
	Field string
	// Reason says what is wrong.
	Reason string
}

// String formats p as `metamesh validate` prints it:
//
//	file:Kind/name: field: reason
//	file: document N: reason          (a document that is not an object)
//	file: reason                      (a file that can't be read)
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	switch {
	case p.Kind != "" && p.Name != "":
		b.WriteString(":" + p.Kind + "/" + p.Name)
	case p.Document > 0:
		b.WriteString(": document " + strconv.Itoa(p.Document))
		if p.Kind != "" {
			b.WriteString(": " + p.Kind)
		}
	}
	if p.Field != "" {
		b.WriteString(": " + p.Field)
	}
	b.WriteString(": " + p.Reason)
	return b.String()
}

// Problems is every problem found in a config folder, in file and document
// order.
type Problems []Problem

// Err returns nil when there are no problems, else an error listing them one
// per line.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = errors.New(p.String())
	}
	return errors.Join(errs...)
}

// sort orders problems by file and document; within a document, the order
// they were found in (Validate's own, field by field) is kept.
func (ps Problems) sort() {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Document, b.Document))
	})
}
