package meshtls

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/role"
)

func TestHandshakeAccepts(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	egress, _ := newStore(t, ca, egressID)
	ingress, _ := newStore(t, ca, ingressID)

	out := handshake(t, egress.ServerConfig(role.Ingress), ingress.ClientConfig(egressID))
	if out.serverErr != nil || out.clientErr != nil {
		t.Fatalf("handshake: server %v, client %v", out.serverErr, out.clientErr)
	}
	if id, _ := IdentityOf(out.peerOfClient); id != egressID {
		t.Errorf("client saw server %v, want %v", id, egressID)
	}
	if got := egress.Identity(); got != egressID {
		t.Errorf("egress.Identity() = %v", got)
	}

	// The server checks the role only: an ingress without a hint is welcome.
	other, _ := newStore(t, ca, Identity{Role: role.Ingress, Name: "no-hint"})
	if out := handshake(t, egress.ServerConfig(role.Ingress), other.ClientConfig(egressID)); out.serverErr != nil || out.clientErr != nil {
		t.Fatalf("hint-less ingress: server %v, client %v", out.serverErr, out.clientErr)
	}
}

func TestConfigsAreTLS13(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	s, _ := newStore(t, ca, egressID)
	for name, cfg := range map[string]*tls.Config{"server": s.ServerConfig(role.Ingress), "client": s.ClientConfig(egressID)} {
		if cfg.MinVersion != tls.VersionTLS13 {
			t.Errorf("%s MinVersion = %x", name, cfg.MinVersion)
		}
		if len(cfg.NextProtos) == 0 || cfg.NextProtos[0] != "h2" {
			t.Errorf("%s NextProtos = %q", name, cfg.NextProtos)
		}
	}

	// A TLS 1.2 client is turned away.
	old := s.ClientConfig(egressID)
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	out := handshake(t, s.ServerConfig(role.Ingress), old)
	wantErrContains(t, "TLS 1.2 server side", out.serverErr, "unsupported versions")
}

// TestServerRefusesClient covers the egress side: who may open a tunnel.
func TestServerRefusesClient(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	egress, _ := newStore(t, ca, egressID)
	otherCA := newTestCA(t, "rogue CA")
	now := time.Now()

	expiredCert, expiredKey := ca.issueAt(t, ingressID, now.Add(-48*time.Hour), now.Add(-time.Hour))
	notYetCert, notYetKey := ca.issueAt(t, ingressID, now.Add(time.Hour), now.Add(48*time.Hour))
	rogueCert, rogueKey := otherCA.issueValid(t, ingressID)
	asEgressCert, asEgressKey := ca.issueValid(t, Identity{Role: role.Egress, Hint: "weur", Name: "weur-1"})
	noIDCert, noIDKey := ca.certPEM, ca.keyPEM // chains (to itself) but names no node

	tests := []struct {
		name       string
		cert, key  []byte // nil: the client presents no certificate
		serverErr  []string
		sentinel   error
		clientSees string
	}{
		{"expired", expiredCert, expiredKey, []string{"client certificate llmesh://ingress/apac/hk-1", "expired"}, ErrUntrusted, "bad certificate"},
		{"not yet valid", notYetCert, notYetKey, []string{"not yet valid"}, ErrUntrusted, "bad certificate"},
		{"other CA", rogueCert, rogueKey, []string{"not trusted by the mesh CA", "unknown authority"}, ErrUntrusted, "bad certificate"},
		{"egress role", asEgressCert, asEgressKey, []string{"llmesh://egress/weur/weur-1 has role egress, allowed: ingress"}, ErrRole, "bad certificate"},
		{"no identity", noIDCert, noIDKey, []string{"no llmesh:// URI SAN"}, ErrIdentity, "bad certificate"},
		{"no certificate", nil, nil, []string{"didn't provide a certificate"}, nil, "certificate required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
			if tt.cert != nil {
				client.Certificates = []tls.Certificate{ca.keyPair(t, tt.cert, tt.key)}
			}
			out := handshake(t, egress.ServerConfig(role.Ingress), client)
			t.Logf("server: %v\nclient: %v", out.serverErr, out.clientErr)
			wantErrContains(t, "server", out.serverErr, tt.serverErr...)
			if tt.sentinel != nil && !errors.Is(out.serverErr, tt.sentinel) {
				t.Errorf("server error %v is not %v", out.serverErr, tt.sentinel)
			}
			wantErrContains(t, "client", out.clientErr, tt.clientSees)
		})
	}
}

// TestClientRefusesServer covers the ingress side: trust in an egress comes
// from its certificate, not from what gossip claims.
func TestClientRefusesServer(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	ingress, _ := newStore(t, ca, ingressID)
	otherCA := newTestCA(t, "rogue CA")
	now := time.Now()

	type server struct{ cert, key []byte }
	fromCA := func(id Identity) server {
		c, k := ca.issueValid(t, id)
		return server{c, k}
	}
	expired := func() server {
		c, k := ca.issueAt(t, egressID, now.Add(-48*time.Hour), now.Add(-time.Minute))
		return server{c, k}
	}()
	rogue := func() server {
		c, k := otherCA.issueValid(t, egressID)
		return server{c, k}
	}()

	tests := []struct {
		name     string
		srv      server
		want     []string
		sentinel error
	}{
		{"other CA", rogue, []string{"egress certificate llmesh://egress/wnam/wnam-1", "not trusted by the mesh CA", "unknown authority"}, ErrUntrusted},
		{"expired", expired, []string{"expired"}, ErrUntrusted},
		{"wrong hint", fromCA(Identity{Role: role.Egress, Hint: "weur", Name: "wnam-1"}),
			[]string{"egress certificate names llmesh://egress/weur/wnam-1, gossip claims llmesh://egress/wnam/wnam-1 (different hint)"}, ErrMismatch},
		{"wrong name", fromCA(Identity{Role: role.Egress, Hint: "wnam", Name: "wnam-2"}),
			[]string{"names llmesh://egress/wnam/wnam-2, gossip claims llmesh://egress/wnam/wnam-1 (different name)"}, ErrMismatch},
		{"ingress role", fromCA(Identity{Role: role.Ingress, Hint: "wnam", Name: "wnam-1"}),
			[]string{"names llmesh://ingress/wnam/wnam-1, gossip claims llmesh://egress/wnam/wnam-1 (different role)"}, ErrMismatch},
		{"no identity", server{ca.certPEM, ca.keyPEM}, []string{"no llmesh:// URI SAN"}, ErrIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{ca.keyPair(t, tt.srv.cert, tt.srv.key)},
				ClientAuth:   tls.RequireAnyClientCert,
			}
			out := handshake(t, srv, ingress.ClientConfig(egressID))
			t.Logf("client: %v\nserver: %v", out.clientErr, out.serverErr)
			wantErrContains(t, "client", out.clientErr, tt.want...)
			if !errors.Is(out.clientErr, tt.sentinel) {
				t.Errorf("client error %v is not %v", out.clientErr, tt.sentinel)
			}
			wantErrContains(t, "server", out.serverErr, "bad certificate")
		})
	}
}

// TestCABundle: a CA file with two CAs (a rotation) trusts both.
func TestCABundle(t *testing.T) {
	oldCA, newCA := newTestCA(t, "old CA"), newTestCA(t, "new CA")
	bundle := append(append([]byte("# old\n"), oldCA.certPEM...), newCA.certPEM...)
	certPEM, keyPEM := newCA.issueValid(t, egressID)
	egress, err := Load(writeFiles(t, t.TempDir(), "e", certPEM, keyPEM, bundle), nil)
	if err != nil {
		t.Fatal(err)
	}
	ingress, _ := newStore(t, oldCA, ingressID) // trusts only the old CA

	// The egress takes the old CA's client...
	client := ingress.ClientConfig(egressID)
	client.VerifyConnection = nil
	if out := handshake(t, egress.ServerConfig(role.Ingress), client); out.serverErr != nil || out.clientErr != nil {
		t.Fatalf("egress refused a client of the old CA: server %v, client %v", out.serverErr, out.clientErr)
	}
	// ...while that client, trusting only the old CA, refuses the egress.
	out := handshake(t, egress.ServerConfig(role.Ingress), ingress.ClientConfig(egressID))
	wantErrContains(t, "ingress trusting only the old CA", out.clientErr, "unknown authority")
}
