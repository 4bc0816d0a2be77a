package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmesh/llmesh/internal/fakeprovider"
)

// headerReplay asks the provider for its recorded answer (see provider).
const headerReplay = "X-Bench-Replay"

// provider is the fake provider every row calls. A request carrying
// headerReplay gets the fake provider's answer to a chat completion,
// recorded once and replayed byte for byte, without the fake's own work
// (JSON decoding, hashing, recording the request): the closed loop uses it
// so that one CPU can keep a proxy saturated. Every other request reaches
// the fake provider.
type provider struct {
	*fakeprovider.Provider
	URL string

	replay   recording
	replayed atomic.Int64
	srv      *http.Server
	served   chan struct{}
	closing  chan struct{} // closed by Close: idle streams end

	kind string // providerH1 or providerH2
	// caPEM is the certificate a client must trust to reach an HTTPS
	// provider (nil over plain HTTP); roots holds it for this process.
	caPEM []byte
	roots *x509.CertPool
}

// The provider's protocols (-provider). The public APIs are reached over
// HTTPS and answer in HTTP/2, whose streams share a connection: providerH2
// is the realistic case, providerH1 (plain HTTP/1.1, one connection per
// exchange) the one the bench measured first.
const (
	providerH2 = "h2"
	providerH1 = "h1"
)

// providerKinds are the values of -provider, the default first.
var providerKinds = []string{providerH2, providerH1}

// describe is how the table's footer names the provider.
func (p *provider) describe() string {
	if p.kind == providerH1 {
		return "h1: plain HTTP/1.1, one connection per open exchange"
	}
	return "h2: HTTPS with HTTP/2 (a certificate made for the run, trusted by the proxies through SSL_CERT_FILE), Go's default of 250 streams per connection"
}

// recording is one recorded answer.
type recording struct {
	status int
	header http.Header
	body   []byte
}

// startProvider starts the provider speaking kind (providerH1 or
// providerH2).
func startProvider(kind string) (*provider, error) {
	p := &provider{Provider: fakeprovider.New(), served: make(chan struct{}), closing: make(chan struct{}), kind: kind}
	rec := httptest.NewRecorder()
	p.Provider.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(chatBody)))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("the fake provider answered a chat completion with %d: %s", rec.Code, rec.Body)
	}
	p.replay = recording{status: rec.Code, header: rec.Header().Clone(), body: rec.Body.Bytes()}
	p.Reset()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	switch kind {
	case providerH1:
	case providerH2:
		cert, err := selfSigned()
		if err != nil {
			ln.Close()
			return nil, err
		}
		p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
		p.roots = x509.NewCertPool()
		p.roots.AppendCertsFromPEM(p.caPEM)
		// The server offers h2 and http/1.1 by ALPN, as the public APIs do.
		p.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		p.URL = "https://" + ln.Addr().String()
	default:
		ln.Close()
		return nil, fmt.Errorf("provider %q: want %s", kind, strings.Join(providerKinds, " or "))
	}
	go func() {
		defer close(p.served)
		if p.srv.TLSConfig != nil {
			_ = p.srv.ServeTLS(ln, "", "")
			return
		}
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if every, err := time.ParseDuration(r.Header.Get(headerIdle)); err == nil && every > 0 {
		p.serveIdle(w, r, every)
		return
	}
	if r.Header.Get(headerReplay) == "" {
		p.Provider.ServeHTTP(w, r)
		return
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	p.replayed.Add(1)
	h := w.Header()
	for k, v := range p.replay.header {
		h[k] = v
	}
	w.WriteHeader(p.replay.status)
	_, _ = w.Write(p.replay.body)
}

// selfSigned is a certificate for 127.0.0.1 that is its own CA.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "llmesh bench provider"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("bench provider certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// trust makes c's transport trust the provider's certificate.
func (p *provider) trust(c *http.Client) {
	if p.roots != nil {
		c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: p.roots}
	}
}

// Close stops the server and ends the streams still open.
func (p *provider) Close() {
	close(p.closing)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		_ = p.srv.Close()
	}
	<-p.served
}
