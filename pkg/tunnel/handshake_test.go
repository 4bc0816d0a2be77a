package tunnel

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/role"
)

// mutualTLS returns the egress's credentials and the ingress's TLS config
// for a mesh CA made for the test.
func mutualTLS(t *testing.T) (credentials.TransportCredentials, *tls.Config) {
	t.Helper()
	caCert, caKey, err := meshtls.NewCA("test mesh", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caCert)
	pair := func(id meshtls.Identity) tls.Certificate {
		certPEM, keyPEM, err := meshtls.Issue(caCert, caKey, id, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server := &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		Certificates: []tls.Certificate{pair(meshtls.Identity{Role: role.Egress, Hint: "wnam", Name: "e1"})}}
	client := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "127.0.0.1",
		Certificates: []tls.Certificate{pair(meshtls.Identity{Role: role.Ingress, Name: "i1"})}}
	return credentials.NewTLS(server), client
}

// silent opens a TCP connection to addr that never sends a byte.
func silent(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByPeer reports whether the peer closes c within d (far below
// grpc-go's own 120 s handshake timeout).
func closedByPeer(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("the server still holds the connection")
	}
	return nil // io.EOF (nil from Copy) or a reset
}

// fetch round-trips a GET on c and reads the body.
func fetch(t *testing.T, c *Conn) error {
	t.Helper()
	resp, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/x", nil))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return err
}

var tlsModes = []string{"plaintext", "mutual TLS"}

func egressIn(t *testing.T, mode string, cfg ServerConfig) (*Server, string, DialConfig) {
	t.Helper()
	var dc DialConfig
	if mode == "mutual TLS" {
		cfg.TLS, dc.TLS = mutualTLS(t)
	}
	srv, addr := startEgress(t, cfg)
	return srv, addr, dc
}

// A connection that sends nothing is closed after the handshake timeout;
// a connection that finished its handshake is never cut by it.
func TestHandshakeTimeout(t *testing.T) {
	for _, mode := range tlsModes {
		t.Run(mode, func(t *testing.T) {
			checkLeaks(t)
			release := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("first "))
				http.NewResponseController(w).Flush()
				select {
				case <-release:
					w.Write([]byte("last"))
				case <-r.Context().Done():
				}
			})
			srv, addr, dc := egressIn(t, mode, ServerConfig{Handler: h, HandshakeTimeout: 200 * time.Millisecond})
			c := dialEgress(t, addr, dc)
			held := get(t, c, "llmesh://p/held")

			if err := closedByPeer(silent(t, addr), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			wait.Until(t, 2*time.Second, "the handshake slot to be free", func() bool { return len(srv.handshakes) == 0 })
			// The held exchange's connection outlived the handshake timeout.
			close(release)
			if b, err := io.ReadAll(held.Body); err != nil || string(b) != "first last" {
				t.Fatalf("held exchange: %q, %v", b, err)
			}
		})
	}
}

// Past max_handshakes, new connections are closed at once; connections
// that finished their handshake do not count, and a real ingress gets
// through again as soon as a slot frees.
func TestMaxHandshakes(t *testing.T) {
	for _, mode := range tlsModes {
		t.Run(mode, func(t *testing.T) {
			checkLeaks(t)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
			srv, addr, dc := egressIn(t, mode, ServerConfig{Handler: h, MaxHandshakes: 2, HandshakeTimeout: time.Minute})

			// More ingress connections than slots, all kept open.
			for range 3 {
				if err := fetch(t, dialEgress(t, addr, dc)); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(srv.handshakes); n != 0 {
				t.Fatalf("%d handshake slots held by finished handshakes", n)
			}

			first := silent(t, addr)
			silent(t, addr)
			wait.Until(t, 2*time.Second, "two connections in their handshake", func() bool { return len(srv.handshakes) == 2 })
			if err := closedByPeer(silent(t, addr), 5*time.Second); err != nil {
				t.Fatalf("a third silent connection: %v", err)
			}
			if err := fetch(t, dialEgress(t, addr, dc)); err == nil {
				t.Fatal("an ingress got through with every slot taken")
			}

			first.Close()
			wait.Until(t, 2*time.Second, "a slot to free", func() bool { return len(srv.handshakes) == 1 })
			if err := fetch(t, dialEgress(t, addr, dc)); err != nil {
				t.Fatalf("an ingress with a slot free: %v", err)
			}
		})
	}
}
