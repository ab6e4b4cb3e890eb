package ca

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The names of the root's certificate and key, as keys of a Secret and as
// files of a folder.
const (
	CertName = "ca.crt"
	KeyName  = "ca.key"
)

// LoadOrCreateSecret returns the Authority kept in the Secret
// namespace/name, generating a root named commonName and creating the
// Secret when there is none. Replicas starting together race to create
// it; the loser reads the winner's, so all sign with one root.
func LoadOrCreateSecret(ctx context.Context, c client.Client, namespace, name, commonName string) (*Authority, error) {
	var s corev1.Secret
	key := client.ObjectKey{Namespace: namespace, Name: name}
	err := c.Get(ctx, key, &s)
	if apierrors.IsNotFound(err) {
		certPEM, keyPEM, gerr := Generate(commonName)
		if gerr != nil {
			return nil, gerr
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
				Labels: map[string]string{"app.kubernetes.io/part-of": "metamesh"}},
			Data: map[string][]byte{CertName: certPEM, KeyName: keyPEM},
		}
		err = c.Create(ctx, &s)
		if apierrors.IsAlreadyExists(err) {
			err = c.Get(ctx, key, &s)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ca: Secret %s/%s: %w", namespace, name, err)
	}
	a, err := Parse(s.Data[CertName], s.Data[KeyName])
	if err != nil {
		return nil, fmt.Errorf("ca: Secret %s/%s: %w", namespace, name, err)
	}
	return a, nil
}

// LoadOrCreateDir returns the Authority kept in dir (CertName and
// KeyName), generating a root named commonName and writing both files
// (the key readable by its owner only) when neither exists. One file
// without the other is an error: the operator must look.
func LoadOrCreateDir(dir, commonName string) (*Authority, error) {
	certPath, keyPath := filepath.Join(dir, CertName), filepath.Join(dir, KeyName)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		var err error
		if certPEM, keyPEM, err = Generate(commonName); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		// The key first and exclusively: of two processes creating the
		// folder's root at once, one wins and the other reads its files.
		if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return LoadFiles(certPath, keyPath)
			}
			return nil, fmt.Errorf("ca: %w", err)
		}
		if err := writeNew(certPath, certPEM, 0o644); err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
	case cerr != nil || kerr != nil:
		return nil, fmt.Errorf("ca: folder %s: %w", dir, errors.Join(cerr, kerr))
	}
	a, err := Parse(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: folder %s: %w", dir, err)
	}
	return a, nil
}

// LoadFiles returns the Authority of a certificate and key given by the
// operator (--ca-cert, --ca-key).
func LoadFiles(certPath, keyPath string) (*Authority, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	a, err := Parse(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %s and %s: %w", certPath, keyPath, err)
	}
	return a, nil
}

// writeNew writes data to a file that must not exist yet.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
