package meshtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmesh/llmesh/pkg/role"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewCA(t *testing.T) {
	certPEM, keyPEM, err := NewCA("dev CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca, key, err := parseCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("not a CA: IsCA %v, key usage %b", ca.IsCA, ca.KeyUsage)
	}
	if ca.Subject.CommonName != "dev CA" {
		t.Errorf("CN %q", ca.Subject.CommonName)
	}
	if pub, ok := key.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", key.Public())
	}
	if d := time.Until(ca.NotAfter); d < 47*time.Hour || d > 48*time.Hour {
		t.Errorf("CA valid for %v more", d)
	}
	if _, _, err := NewCA("dev CA", 0); err == nil {
		t.Error("NewCA with zero validity succeeded")
	}
}

func TestIssue(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	certPEM, keyPEM, err := Issue(ca.certPEM, ca.keyPEM, egressID, []string{"127.0.0.1", "", "egress.local"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if !slices.Contains(leaf.ExtKeyUsage, u) {
			t.Errorf("ExtKeyUsage %v lacks %v", leaf.ExtKeyUsage, u)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: poolOf(ca.cert), KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("verify for %v: %v", u, err)
		}
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "llmesh://egress/wnam/wnam-1" {
		t.Errorf("URIs = %v", leaf.URIs)
	}
	if len(leaf.IPAddresses) != 1 || len(leaf.DNSNames) != 1 {
		t.Errorf("SANs: IPs %v, DNS %v", leaf.IPAddresses, leaf.DNSNames)
	}
	if leaf.SerialNumber.BitLen() > 128 || leaf.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %x is not a positive 128-bit number", leaf.SerialNumber)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if len(keyPEM) == 0 {
		t.Error("no key")
	}
	if time.Until(leaf.NotBefore) > 0 {
		t.Error("a fresh certificate is not valid yet")
	}

	other := newTestCA(t, "other CA")
	tests := []struct {
		name          string
		caCert, caKey []byte
		id            Identity
		want          string
	}{
		{"invalid identity", ca.certPEM, ca.keyPEM, Identity{Role: role.Egress, Name: "a/b"}, "only letters"},
		{"unknown role", ca.certPEM, ca.keyPEM, Identity{Role: "admin", Name: "a"}, "role"},
		{"key of another CA", ca.certPEM, other.keyPEM, egressID, "does not match"},
		{"leaf as CA", certPEM, keyPEM, egressID, "not a certificate authority"},
		{"no PEM", []byte("x"), ca.keyPEM, egressID, "no CERTIFICATE PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Issue(tt.caCert, tt.caKey, tt.id, nil, time.Hour)
			wantErrContains(t, "Issue", err, tt.want)
		})
	}
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
