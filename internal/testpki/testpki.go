// Package testpki makes throwaway certificate authorities and certificates
// for tests: a CA whose certificate is written as a PEM file, and server or
// client certificates it signs, as PEM files or in memory. Keys are P-256
// ECDSA; everything is valid from an hour ago to an hour from now.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// CA is a certificate authority for one test.
type CA struct {
	// Cert is the CA's certificate.
	Cert *x509.Certificate
	// Path is the PEM file holding Cert (for tls_client_ca, -tls-ca and
	// the like).
	Path string
	// Pool holds Cert, for tls.Config.RootCAs or ClientCAs.
	Pool *x509.CertPool

	t      testing.TB
	dir    string
	key    *ecdsa.PrivateKey
	mu     sync.Mutex
	serial int64
}

// New makes a CA with common name name and writes its certificate to
// dir/name.pem. It fails t on any error.
func New(t testing.TB, dir, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Cert: cert, Pool: x509.NewCertPool(), t: t, dir: dir, key: key, serial: 1}
	ca.Pool.AddCert(cert)
	ca.Path = ca.write(name+".pem", "CERTIFICATE", der, 0o644)
	return ca
}

// Server issues a server certificate for 127.0.0.1 and writes it and its
// key as dir/cn.pem and dir/cn.key; it returns their paths.
func (ca *CA) Server(cn string) (certPath, keyPath string) {
	ca.t.Helper()
	der, key := ca.issue(cn, x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	return ca.writePair(cn, der, key)
}

// ClientFiles issues a client certificate with common name cn and writes
// it and its key as dir/cn.pem and dir/cn.key; it returns their paths.
func (ca *CA) ClientFiles(cn string) (certPath, keyPath string) {
	ca.t.Helper()
	der, key := ca.issue(cn, x509.ExtKeyUsageClientAuth, nil)
	return ca.writePair(cn, der, key)
}

// Client issues a client certificate with common name cn, in memory.
func (ca *CA) Client(cn string) tls.Certificate {
	ca.t.Helper()
	der, key := ca.issue(cn, x509.ExtKeyUsageClientAuth, nil)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *CA) issue(cn string, usage x509.ExtKeyUsage, ip net.IP) ([]byte, *ecdsa.PrivateKey) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	ca.mu.Lock()
	ca.serial++
	serial := ca.serial
	ca.mu.Unlock()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return der, key
}

func (ca *CA) writePair(cn string, der []byte, key *ecdsa.PrivateKey) (certPath, keyPath string) {
	ca.t.Helper()
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return ca.write(cn+".pem", "CERTIFICATE", der, 0o644), ca.write(cn+".key", "EC PRIVATE KEY", kder, 0o600)
}

func (ca *CA) write(name, typ string, der []byte, mode os.FileMode) string {
	ca.t.Helper()
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		ca.t.Fatal(err)
	}
	return path
}
