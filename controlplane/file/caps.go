package file

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"

	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// Caps on what a config folder may hold, so that a mistaken (or hostile)
// file is refused before it is decoded into gigabytes: decoding YAML costs
// several times the file's size in memory. Where Kubernetes has a limit,
// it is Kubernetes': the same YAML must fit both modes. The per-kind caps
// (routes per MetaRouter, attribute match lengths, endpoints...) are the
// kinds' own validation, the same in both modes (docs/config.md).
const (
	// MaxFileBytes is the largest config file read: the Kubernetes API
	// server's limit on a request body (3 MiB).
	MaxFileBytes = 3 << 20
	// MaxFolderBytes is the most bytes read from one folder's files
	// together: decoding keeps about 15 times as much at its peak.
	MaxFolderBytes = 16 << 20
	// MaxObjects is the most objects (YAML documents) in one folder.
	MaxObjects = 10000
	// maxLabelValue is Kubernetes' limit on a label value.
	maxLabelValue = 63
	// maxAnnotationBytes is Kubernetes' limit on an object's annotations,
	// keys and values together.
	maxAnnotationBytes = 256 << 10
	// freeAfter is how many bytes a refused load must have read before
	// its memory is handed back to the OS at once (see release).
	freeAfter = 1 << 20
)

// budget is what one load used of the folder's caps.
type budget struct {
	read    int64 // bytes read from the folder's files
	objects int   // documents decoded
}

// readCapped reads the config file at path, refusing one larger than
// MaxFileBytes, or than the folder's remaining budget, before reading it
// whole (size is its size as Stat saw it; the read is bounded too, in case
// it grew since).
func (l *loader) readCapped(path string, size int64) ([]byte, error) {
	limit := min(int64(MaxFileBytes), MaxFolderBytes-l.read)
	if size > limit {
		return nil, tooBig(size)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	l.read += int64(len(data))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooBig(int64(len(data)))
	}
	return data, nil
}

// tooBig says which cap a file of size bytes is over.
func tooBig(size int64) error {
	if size > MaxFileBytes {
		return fmt.Errorf("file too large: %d bytes, the limit is %d (3 MiB, the Kubernetes API server's request limit); split it", size, MaxFileBytes)
	}
	return fmt.Errorf("file not read: the folder's files together exceed %d bytes (%d MiB)", MaxFolderBytes, MaxFolderBytes>>20)
}

// countObject counts one more document of the folder and reports whether
// it is within MaxObjects; the first one over is reported.
func (l *loader) countObject(d *document) bool {
	l.objects++
	if l.objects == MaxObjects+1 {
		l.add(l.at(d, true), "", fmt.Sprintf("too many objects: the folder holds more than %d; this and later documents are not read", MaxObjects))
	}
	return l.objects <= MaxObjects
}

// capErrors checks obj's labels and annotations as the Kubernetes API
// server would check metadata, and the label maps of the kinds (endpoint
// labels, subset selectors) as labels. It runs before Validate.
func capErrors(obj metav1.Object) field.ErrorList {
	meta := field.NewPath("metadata")
	errs := labelErrors(obj.GetLabels(), meta.Child("labels"))
	size := 0
	for k, v := range obj.GetAnnotations() {
		size += len(k) + len(v)
	}
	if size > maxAnnotationBytes {
		errs = append(errs, field.TooLong(meta.Child("annotations"), "", maxAnnotationBytes))
	}
	switch o := obj.(type) {
	case *v1alpha1.ServiceEntry:
		for i, e := range o.Spec.Endpoints {
			errs = append(errs, labelErrors(e.Labels, field.NewPath("spec", "endpoints").Index(i).Child("labels"))...)
		}
	case *v1alpha1.DestinationPolicy:
		for i, s := range o.Spec.Subsets {
			errs = append(errs, labelErrors(s.Labels, field.NewPath("spec", "subsets").Index(i).Child("labels"))...)
		}
	}
	return errs
}

// labelErrors checks a label map: keys as Kubernetes label keys, values at
// most 63 characters of Kubernetes' label value alphabet. Values are
// checked for length first, so an oversized one costs no pattern match,
// and no problem repeats an oversized key or value.
func labelErrors(labels map[string]string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k, v := range labels {
		kp := p.Key(clip(k))
		for _, msg := range content.IsLabelKey(k) {
			errs = append(errs, field.Invalid(kp, clip(k), "key: "+msg))
		}
		if len(v) > maxLabelValue {
			errs = append(errs, field.TooLong(kp, "", maxLabelValue))
			continue
		}
		for _, msg := range content.IsLabelValue(v) {
			errs = append(errs, field.Invalid(kp, v, msg))
		}
	}
	return errs
}

// clip shortens s for a problem message.
func clip(s string) string {
	const keep = 64
	if len(s) <= keep {
		return s
	}
	return s[:keep] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// refused drops what a refused load decoded and, when it read much, hands
// the memory back to the OS at once: the runtime would otherwise keep the
// garbage's pages for minutes, and a proxy that refused a large folder
// would stay as big as if it had applied it.
func (l *loader) refused() {
	l.cfg = nil
	if l.read >= freeAfter {
		debug.FreeOSMemory()
	}
}
