package meshtls

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/role"
)

var (
	egressID  = Identity{Role: role.Egress, Hint: "wnam", Name: "wnam-1"}
	ingressID = Identity{Role: role.Ingress, Hint: "apac", Name: "hk-1"}
)

// testCA is a CA made by NewCA, with its parsed forms for the internal issue.
type testCA struct {
	certPEM, keyPEM []byte
	cert            *x509.Certificate
	key             crypto.Signer
}

func newTestCA(t testing.TB, cn string) *testCA {
	t.Helper()
	certPEM, keyPEM, err := NewCA(cn, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := parseCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{certPEM: certPEM, keyPEM: keyPEM, cert: cert, key: key}
}

// issueValid returns a certificate valid from an hour ago for a day.
func (ca *testCA) issueValid(t testing.TB, id Identity) (certPEM, keyPEM []byte) {
	t.Helper()
	now := time.Now()
	return ca.issueAt(t, id, now.Add(-time.Hour), now.Add(23*time.Hour))
}

func (ca *testCA) issueAt(t testing.TB, id Identity, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := issue(ca.cert, ca.key, id, []string{"127.0.0.1", "localhost"}, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// keyPair is a certificate for a peer that is not a Store (expired ones
// cannot be loaded into a Store).
func (ca *testCA) keyPair(t testing.TB, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeFiles writes a node's three PEM files into dir.
func writeFiles(t testing.TB, dir, name string, certPEM, keyPEM, caPEM []byte) Files {
	t.Helper()
	f := Files{
		Cert: filepath.Join(dir, name+".pem"),
		Key:  filepath.Join(dir, name+"-key.pem"),
		CA:   filepath.Join(dir, name+"-ca.pem"),
	}
	putFiles(t, f, certPEM, keyPEM, caPEM)
	return f
}

// putFiles replaces the files f names, as an operator updating them would:
// each one whole, by rename.
func putFiles(t testing.TB, f Files, certPEM, keyPEM, caPEM []byte) {
	t.Helper()
	for p, b := range map[string][]byte{f.Cert: certPEM, f.Key: keyPEM, f.CA: caPEM} {
		tmp := p + ".new"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
}

// newStore issues a valid certificate for id and loads it.
func newStore(t testing.TB, ca *testCA, id Identity) (*Store, Files) {
	t.Helper()
	return newLoggedStore(t, ca, id, nil)
}

// newLoggedStore is newStore with the store's logs going to w as well.
func newLoggedStore(t testing.TB, ca *testCA, id Identity, w io.Writer) (*Store, Files) {
	t.Helper()
	certPEM, keyPEM := ca.issueValid(t, id)
	f := writeFiles(t, t.TempDir(), id.Name, certPEM, keyPEM, ca.certPEM)
	s, err := Load(f, testLogger(t, w))
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

// renew issues a new valid certificate for id into the files f names and
// returns it.
func (ca *testCA) renew(t testing.TB, f Files, id Identity) (certPEM []byte) {
	t.Helper()
	certPEM, keyPEM := ca.issueValid(t, id)
	putFiles(t, f, certPEM, keyPEM, ca.certPEM)
	return certPEM
}

func testLogger(t testing.TB, w io.Writer) *slog.Logger {
	if w == nil {
		w = io.Discard
		if testing.Verbose() {
			w = os.Stderr
		}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// outcome is what both ends of one handshake saw.
type outcome struct {
	serverErr, clientErr error
	peerOfClient         *x509.Certificate // the server's leaf as the client saw it
}

// handshake runs one TLS handshake over loopback and exchanges a byte, so a
// client certificate that the server rejects after the client finished (TLS
// 1.3) surfaces as the client's read error.
func handshake(t *testing.T, server, client *tls.Config) outcome {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	var out outcome
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			out.serverErr = err
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		tc := tls.Server(c, server)
		if out.serverErr = tc.Handshake(); out.serverErr == nil {
			_, out.serverErr = tc.Write([]byte{1})
		}
		// Read until the client closes: closing with unread data would
		// send a reset that could overtake the alert.
		io.Copy(io.Discard, c)
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(deadline)
	tc := tls.Client(c, client)
	if out.clientErr = tc.Handshake(); out.clientErr == nil {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			out.peerOfClient = certs[0]
		}
		var b [1]byte
		_, out.clientErr = io.ReadFull(tc, b[:])
	}
	c.Close()
	wg.Wait()
	return out
}

// echoServer serves TLS connections that echo what they read, until the
// test ends.
func echoServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// dialEcho connects to an echo server and checks one round trip.
func dialEcho(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ping(t, c.(*tls.Conn), "hello")
	return c.(*tls.Conn)
}

func ping(t *testing.T, c *tls.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write on live connection: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read on live connection: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

func serialOf(t *testing.T, c *tls.Conn) *big.Int {
	t.Helper()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func wantErrContains(t *testing.T, what string, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", what, subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %q does not contain %q", what, err, s)
		}
	}
}
