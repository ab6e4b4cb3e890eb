package ca

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	first, err := LoadOrCreateDir(dir, "mesh root")
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, KeyName))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("the key's mode is %v, want 0600", info.Mode().Perm())
	}
	again, err := LoadOrCreateDir(dir, "mesh root")
	if err != nil {
		t.Fatal(err)
	}
	if string(again.CertPEM()) != string(first.CertPEM()) {
		t.Fatal("a restart made a new root instead of reading the folder's")
	}
	if err := os.Remove(filepath.Join(dir, CertName)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateDir(dir, "mesh root"); err == nil || !strings.Contains(err.Error(), CertName) {
		t.Fatalf("a folder with a key and no certificate: error %v, want one naming %s", err, CertName)
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := Generate("given root")
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "root.pem"), filepath.Join(dir, "root-key.pem")
	for path, data := range map[string][]byte{certPath: certPEM, keyPath: keyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := LoadFiles(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if a.Cert().Subject.CommonName != "given root" {
		t.Fatalf("loaded %q", a.Cert().Subject.CommonName)
	}
	if _, err := LoadFiles(keyPath, certPath); err == nil || !strings.Contains(err.Error(), "root-key.pem") {
		t.Fatalf("swapped files: error %v, want one naming them", err)
	}
}
