package xds

import "testing"

// TestRecordHash: a record as it lies in a request hashes as the same
// name and version of a table do, and two names with their versions
// swapped do not digest alike (they would if name and version hashes
// were only summed).
func TestRecordHash(t *testing.T) {
	if hashRecord([]byte("outbound|20880|v0|svc"), []byte("0123abcd")) != recordHash("outbound|20880|v0|svc", "0123abcd") {
		t.Error("a record's hash differs from the same name and version's")
	}
	for _, p := range [][4]string{{"a", "1", "b", "2"}, {"x", "x", "y", "y"}, {"svc-1", "v1", "svc-2", "v2"}} {
		if recordHash(p[0], p[1])+recordHash(p[2], p[3]) == recordHash(p[0], p[3])+recordHash(p[2], p[1]) {
			t.Errorf("%q at %q and %q at %q digest as with the versions swapped", p[0], p[1], p[2], p[3])
		}
	}
	if recordHash("ab", "c") == recordHash("a", "bc") {
		t.Error(`"ab" at "c" hashes as "a" at "bc"`)
	}
}
