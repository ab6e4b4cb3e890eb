//go:build race

package dubboclient

import "errors"

// Under the race detector dubbo-go is not linked at all: consumers run in
// the helper process.
const inprocAvailable = false

func newInproc(string, string, Options) (backend, error) {
	return nil, errors.New("dubboclient: in-process consumer not built with -race")
}
