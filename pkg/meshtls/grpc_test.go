package meshtls

import (
	"context"
	"crypto/tls"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/llmesh/llmesh/internal/testio"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/role"
)

// grpcEgress serves the gRPC health service with the egress's credentials,
// as the tunnel server does with its own service.
func grpcEgress(t *testing.T, s *Store) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(s.ServerConfig(role.Ingress))))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String()
}

func grpcDial(t *testing.T, addr string, cfg *tls.Config) healthpb.HealthClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

// check calls the health service and returns the serial of the server
// certificate of the connection that carried the call.
func check(ctx context.Context, c healthpb.HealthClient) (*big.Int, error) {
	var p peer.Peer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return nil, err
	}
	return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber, nil
}

func TestGRPC(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	var logs testio.Buffer
	egress, files := newLoggedStore(t, ca, egressID, &logs)
	ingress, _ := newStore(t, ca, ingressID)
	addr := grpcEgress(t, egress)

	live := grpcDial(t, addr, ingress.ClientConfig(egressID))
	first, err := check(t.Context(), live)
	if err != nil {
		t.Fatalf("ingress to egress over gRPC: %v", err)
	}

	t.Run("gossip lies about the hint", func(t *testing.T) {
		liar := Identity{Role: role.Egress, Hint: "weur", Name: egressID.Name}
		_, err := check(t.Context(), grpcDial(t, addr, ingress.ClientConfig(liar)))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("dial with a wrong claim: %v, want Unavailable", err)
		}
		wantErrContains(t, "wrong claim", err, "egress certificate names llmesh://egress/wnam/wnam-1, gossip claims llmesh://egress/weur/wnam-1")
	})

	t.Run("egress role as client", func(t *testing.T) {
		other, _ := newStore(t, ca, Identity{Role: role.Egress, Hint: "weur", Name: "weur-1"})
		_, err := check(t.Context(), grpcDial(t, addr, other.ClientConfig(egressID)))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("egress as client: %v, want Unavailable", err)
		}
		// The client sees an alert or, when the egress closes first, a broken
		// connection; the reason is in the egress's log.
		wait.Until(t, 5*time.Second, "the refusal to be logged", func() bool {
			return strings.Contains(logs.String(), "refused a tunnel client") &&
				strings.Contains(logs.String(), "has role egress, allowed: ingress")
		})
	})

	t.Run("reload keeps the live connection", func(t *testing.T) {
		certPEM := ca.renew(t, files, egressID)
		if err := egress.Reload(); err != nil {
			t.Fatal(err)
		}
		again, err := check(t.Context(), live)
		if err != nil {
			t.Fatalf("live connection after reload: %v", err)
		}
		if again.Cmp(first) != 0 {
			t.Fatal("the live connection was re-established after reload")
		}
		fresh, err := check(t.Context(), grpcDial(t, addr, ingress.ClientConfig(egressID)))
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := ParseCertificate(certPEM); fresh.Cmp(want.SerialNumber) != 0 {
			t.Fatalf("a new connection got certificate %x, want the reloaded %x", fresh, want.SerialNumber)
		}
	})
}
