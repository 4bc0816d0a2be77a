package meshtls

import (
	"github.com/llmesh/llmesh/pkg/role"

	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors returned by the handshake checks, wrapped with the details.
var (
	ErrUntrusted   = errors.New("certificate not trusted by the mesh CA")
	ErrRole        = errors.New("certificate role not allowed")
	ErrMismatch    = errors.New("certificate does not name the expected node")
	ErrNoPeerCerts = errors.New("peer presented no certificate")
)

// ServerConfig is the TLS config of an egress's gRPC server. It presents
// the current certificate and accepts only clients whose certificate chains
// to the current CA pool, is valid for client auth and carries one of
// allowedRoles. Refusals are logged with their reason, which TLS does not
// carry to the client.
//
// RequireAnyClientCert plus verification in VerifyConnection amounts to
// RequireAndVerifyClientCert against a pool that Reload can swap. It also
// runs on resumed sessions, so a ticket cannot outlive a CA change.
func (s *Store) ServerConfig(allowedRoles ...role.Role) *tls.Config {
	allowed := slices.Clone(allowedRoles)
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2"},
		ClientAuth: tls.RequireAnyClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cur.Load().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := s.verifyClient(cs.PeerCertificates, allowed)
			if err != nil {
				// The client sees only a TLS alert; the reason is here.
				s.log.Warn("meshtls: refused a tunnel client", "err", err)
			}
			return err
		},
	}
}

func (s *Store) verifyClient(chain []*x509.Certificate, allowed []role.Role) error {
	id, err := s.verifyPeer(chain, x509.ExtKeyUsageClientAuth, "client")
	if err != nil {
		return err
	}
	if !slices.Contains(allowed, id.Role) {
		return fmt.Errorf("meshtls: client certificate %s has role %s, allowed: %s: %w",
			id, id.Role, joinRoles(allowed), ErrRole)
	}
	return nil
}

// ClientConfig is the TLS config of an ingress dialing the egress that
// gossip announced as want. It presents the current certificate and accepts
// the server only if its certificate chains to the current CA pool, is valid
// for server auth and names exactly want (role, hint and name).
//
// Host names are not checked (InsecureSkipVerify): tunnel addresses are often
// IPs that no certificate lists. The identity check replaces them.
func (s *Store) ClientConfig(want Identity) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{"h2"},
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.cur.Load().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := s.verifyServer(cs.PeerCertificates, want)
			if err != nil {
				// gRPC keeps retrying the connection quietly: say why here.
				s.log.Warn("meshtls: refused an egress", "want", want.String(), "err", err)
			}
			return err
		},
	}
}

func (s *Store) verifyServer(chain []*x509.Certificate, want Identity) error {
	id, err := s.verifyPeer(chain, x509.ExtKeyUsageServerAuth, string(want.Role))
	if err != nil {
		return err
	}
	if id != want {
		return fmt.Errorf("meshtls: %s certificate names %s, gossip claims %s (different %s): %w",
			want.Role, id, want, differences(id, want), ErrMismatch)
	}
	return nil
}

// verifyPeer checks the peer's chain against the current CA pool and returns
// the identity of its leaf. what names the peer in errors.
func (s *Store) verifyPeer(chain []*x509.Certificate, usage x509.ExtKeyUsage, what string) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, fmt.Errorf("meshtls: %s: %w", what, ErrNoPeerCerts)
	}
	if err := verifyChain(chain, s.cur.Load().pool, usage); err != nil {
		return Identity{}, fmt.Errorf("meshtls: %s certificate %s: %w: %w", what, describe(chain[0]), ErrUntrusted, err)
	}
	id, err := IdentityOf(chain[0])
	if err != nil {
		return Identity{}, fmt.Errorf("meshtls: %s certificate: %w", what, err)
	}
	return id, nil
}

func joinRoles(rs []role.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// describe names a certificate that is not trusted yet: its identity if it
// has one, else its subject.
func describe(c *x509.Certificate) string {
	if id, err := IdentityOf(c); err == nil {
		return id.String()
	}
	return fmt.Sprintf("%q", c.Subject.String())
}

func differences(got, want Identity) string {
	var d []string
	if got.Role != want.Role {
		d = append(d, "role")
	}
	if got.Hint != want.Hint {
		d = append(d, "hint")
	}
	if got.Name != want.Name {
		d = append(d, "name")
	}
	return strings.Join(d, " and ")
}
