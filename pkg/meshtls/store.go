package meshtls

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Files are the PEM paths from config tunnel.tls.
type Files struct {
	Cert string // node certificate, optionally followed by intermediates
	Key  string // the certificate's private key
	CA   string // one or more trusted CA certificates
}

// Store holds the current certificate and CA pool, reloadable without
// dropping live connections: handshakes read the current values through
// callbacks; existing connections keep their session.
type Store struct {
	files Files
	log   *slog.Logger

	mu    sync.Mutex // serialises reloads
	cur   atomic.Pointer[material]
	check func(Identity) error // set by Require
}

// Require makes every later Reload refuse (and keep the current material)
// when check rejects the new certificate's identity: a renewed certificate
// must still name this node.
func (s *Store) Require(check func(Identity) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.check = check
}

// material is one consistent set of loaded files, swapped as a whole.
type material struct {
	cert   *tls.Certificate // Leaf is set
	id     Identity
	pool   *x509.CertPool
	caEnd  time.Time // when the CA file's earliest-expiring certificate expires
	digest digest    // of the bytes it was loaded from
}

// digest identifies the contents of the three files.
type digest [3][sha256.Size]byte

// Load reads and validates f: the key matches the certificate, the CA file
// parses, the certificate chains to the CA and carries an llmesh identity.
// A nil log discards the messages.
func Load(f Files, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{files: f, log: log}
	m, err := load(f)
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	log.Info("meshtls: certificate loaded", certAttrs(m)...)
	return s, nil
}

// Reload re-reads the files. On error the old material stays in use and the
// error is returned. New handshakes use the new material; live connections
// are untouched.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := load(s.files)
	if err != nil {
		return err
	}
	if s.check != nil {
		if err := s.check(m.id); err != nil {
			return fmt.Errorf("meshtls: new certificate refused, keeping the current one: %w", err)
		}
	}
	old := s.cur.Swap(m)
	if old.digest != m.digest {
		s.log.Info("meshtls: certificate reloaded", certAttrs(m)...)
	}
	return nil
}

// Watch polls the files every interval (10s when interval <= 0) and reloads
// when their contents change, logging the result. A failed reload is logged
// once and retried when the files change again. Watch returns when ctx ends.
//
// It compares contents rather than mtime and size: kernels stamp mtimes with
// a coarse clock, and a re-issued certificate often has the same size, so
// a quick rewrite could go unnoticed. The files are a few KiB.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	w := watcher{s: s, tried: s.cur.Load().digest}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.poll()
		}
	}
}

// watcher remembers the last contents it tried, so that a broken update is
// reported once rather than on every poll.
type watcher struct {
	s     *Store
	tried digest
}

func (w *watcher) poll() {
	d, _, err := readFiles(w.s.files)
	if err != nil {
		// Missing or unreadable: a distinct failure is a distinct state.
		d = digest{sha256.Sum256([]byte(err.Error()))}
	}
	if d == w.tried || d == w.s.cur.Load().digest {
		w.tried = d
		return
	}
	w.tried = d
	if err == nil {
		err = w.s.Reload()
	}
	if err != nil {
		w.s.log.Warn("meshtls: reload failed, keeping the current certificate",
			"err", err, "identity", w.s.Identity().String())
	}
}

// Identity returns the identity of the current own certificate.
func (s *Store) Identity() Identity { return s.cur.Load().id }

// Certificate returns the current own certificate (with Leaf set).
func (s *Store) Certificate() *tls.Certificate { return s.cur.Load().cert }

// Expiry returns when the current own certificate and the first CA
// certificate of the CA file expire.
func (s *Store) Expiry() (cert, ca time.Time) {
	m := s.cur.Load()
	return m.cert.Leaf.NotAfter, m.caEnd
}

func certAttrs(m *material) []any {
	return []any{
		"identity", m.id.String(),
		"serial", fmt.Sprintf("%x", m.cert.Leaf.SerialNumber),
		"not_after", m.cert.Leaf.NotAfter.UTC().Format(time.RFC3339),
	}
}

// readFiles returns the contents of cert, key and CA files and their digest.
func readFiles(f Files) (digest, [3][]byte, error) {
	var d digest
	var data [3][]byte
	for i, p := range [3]string{f.Cert, f.Key, f.CA} {
		if p == "" {
			return d, data, errors.New("meshtls: cert, key and ca files are all required")
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return d, data, fmt.Errorf("meshtls: %w", err)
		}
		data[i] = b
		d[i] = sha256.Sum256(b)
	}
	return d, data, nil
}

func load(f Files) (*material, error) {
	d, data, err := readFiles(f)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, caPEM := data[0], data[1], data[2]
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The tls error names the problem (mismatch, no PEM, ...) and never the key.
		return nil, fmt.Errorf("meshtls: certificate %s with key %s: %w", f.Cert, f.Key, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("meshtls: certificate %s: %w", f.Cert, err)
		}
	}
	pool, caEnd, err := parsePool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("meshtls: CA file %s: %w", f.CA, err)
	}
	id, err := IdentityOf(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("meshtls: certificate %s: %w", f.Cert, err)
	}
	chain := make([]*x509.Certificate, 0, len(cert.Certificate))
	chain = append(chain, cert.Leaf)
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("meshtls: certificate %s: intermediate: %w", f.Cert, err)
		}
		chain = append(chain, c)
	}
	// A node is both client and server, but an ingress needs only client
	// auth and an egress only server auth: the handshake checks the usage.
	if err := verifyChain(chain, pool, x509.ExtKeyUsageAny); err != nil {
		return nil, fmt.Errorf("meshtls: certificate %s (%s) does not chain to CA file %s: %w", f.Cert, id, f.CA, err)
	}
	return &material{cert: &cert, id: id, pool: pool, caEnd: caEnd, digest: d}, nil
}

// parsePool parses every CERTIFICATE block. Text between blocks (bundle
// comments) is skipped, but another PEM type is an error, so a key pasted
// into the CA file is not silently ignored. end is when the first of the
// certificates expires.
func parsePool(b []byte) (pool *x509.CertPool, end time.Time, err error) {
	pool = x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, time.Time{}, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, time.Time{}, err
		}
		pool.AddCert(c)
		if n == 0 || c.NotAfter.Before(end) {
			end = c.NotAfter
		}
		n++
	}
	if n == 0 {
		return nil, time.Time{}, errors.New("no CERTIFICATE PEM block")
	}
	return pool, end, nil
}

func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}
	if len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	_, err := chain[0].Verify(opts)
	return err
}
