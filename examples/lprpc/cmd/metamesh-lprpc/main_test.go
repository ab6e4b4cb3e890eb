package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryHasTheCodec builds the plugin binary and checks it carries
// lprpc beside the built-in codecs.
func TestBinaryHasTheCodec(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "metamesh-lprpc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("metamesh-lprpc version: %v\n%s", err, out)
	}
	for _, codec := range []string{"dubbo", "lprpc", "redis", "thrift"} {
		if !strings.Contains(string(out), codec) {
			t.Errorf("version output lacks codec %s:\n%s", codec, out)
		}
	}
}
