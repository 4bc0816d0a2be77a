package meshtls

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/testio"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/role"
)

func TestLoadRefuses(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	otherCA := newTestCA(t, "other CA")
	certPEM, keyPEM := ca.issueValid(t, egressID)
	_, otherKey := ca.issueValid(t, egressID)
	rogueCert, rogueKey := otherCA.issueValid(t, egressID)
	now := time.Now()
	expiredCert, expiredKey := ca.issueAt(t, egressID, now.Add(-48*time.Hour), now.Add(-time.Hour))

	tests := []struct {
		name             string
		cert, key, caPEM []byte
		want             string
	}{
		{"key of another certificate", certPEM, otherKey, ca.certPEM, "private key does not match public key"},
		{"garbage certificate", []byte("not pem"), keyPEM, ca.certPEM, "failed to find any PEM data in certificate input"},
		{"garbage CA", certPEM, keyPEM, []byte("not pem"), "no CERTIFICATE PEM block"},
		{"key in CA file", certPEM, keyPEM, append(append([]byte{}, ca.certPEM...), keyPEM...), `unexpected PEM block "PRIVATE KEY"`},
		{"other CA", rogueCert, rogueKey, ca.certPEM, "does not chain to CA file"},
		{"expired", expiredCert, expiredKey, ca.certPEM, "expired"},
		{"no identity", ca.certPEM, ca.keyPEM, ca.certPEM, "no llmesh:// URI SAN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFiles(t, t.TempDir(), "n", tt.cert, tt.key, tt.caPEM)
			s, err := Load(f, nil)
			wantErrContains(t, "Load", err, tt.want)
			if s != nil {
				t.Error("Load returned a store with an error")
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		f := writeFiles(t, t.TempDir(), "n", certPEM, keyPEM, ca.certPEM)
		f.CA += ".missing"
		_, err := Load(f, nil)
		wantErrContains(t, "Load", err, "no such file")
	})
	t.Run("unset", func(t *testing.T) {
		_, err := Load(Files{}, nil)
		wantErrContains(t, "Load", err, "all required")
	})
}

// TestReloadKeepsLiveConnections: a new certificate in the files reaches new
// handshakes after Reload while a connection made before keeps working.
func TestReloadKeepsLiveConnections(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	egress, files := newStore(t, ca, egressID)
	ingress, _ := newStore(t, ca, ingressID)
	addr := echoServer(t, egress.ServerConfig(role.Ingress))

	live := dialEcho(t, addr, ingress.ClientConfig(egressID))
	oldSerial := serialOf(t, live)

	// Same node, new certificate: new serial.
	ca.renew(t, files, egressID)
	if err := egress.Reload(); err != nil {
		t.Fatal(err)
	}
	fresh := dialEcho(t, addr, ingress.ClientConfig(egressID))
	if serialOf(t, fresh).Cmp(oldSerial) == 0 {
		t.Fatal("a handshake after Reload presented the old certificate")
	}
	ping(t, live, "still here")
	if serialOf(t, live).Cmp(oldSerial) != 0 {
		t.Fatal("the live connection changed certificates")
	}

	// New identity: an ingress still expecting the old name is refused on
	// new handshakes; the live connection is untouched.
	moved := Identity{Role: role.Egress, Hint: "weur", Name: "wnam-1"}
	ca.renew(t, files, moved)
	if err := egress.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := egress.Identity(); got != moved {
		t.Fatalf("Identity() after reload = %v, want %v", got, moved)
	}
	out := handshake(t, egress.ServerConfig(role.Ingress), ingress.ClientConfig(egressID))
	wantErrContains(t, "old claim", out.clientErr, "gossip claims llmesh://egress/wnam/wnam-1")
	dialEcho(t, addr, ingress.ClientConfig(moved))
	ping(t, live, "and still")
}

// TestReloadBrokenKeepsOld: a failed reload returns the error and changes
// nothing.
func TestReloadBrokenKeepsOld(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	egress, files := newStore(t, ca, egressID)
	ingress, _ := newStore(t, ca, ingressID)
	addr := echoServer(t, egress.ServerConfig(role.Ingress))
	before := serialOf(t, dialEcho(t, addr, ingress.ClientConfig(egressID)))

	broken := map[string]func(){
		"truncated cert": func() { os.WriteFile(files.Cert, []byte("-----BEGIN CERTIFICATE-----\nAAAA"), 0o600) },
		"mismatched key": func() {
			_, k := ca.issueValid(t, egressID)
			os.WriteFile(files.Key, k, 0o600)
		},
		"empty CA":    func() { os.WriteFile(files.CA, nil, 0o600) },
		"removed key": func() { os.Remove(files.Key) },
	}
	for name, breakIt := range broken {
		t.Run(name, func(t *testing.T) {
			breakIt()
			if err := egress.Reload(); err == nil {
				t.Fatal("Reload of broken files succeeded")
			} else {
				t.Log(err)
			}
			if got := egress.Identity(); got != egressID {
				t.Errorf("Identity() = %v after a failed reload", got)
			}
			if got := serialOf(t, dialEcho(t, addr, ingress.ClientConfig(egressID))); got.Cmp(before) != 0 {
				t.Error("a failed reload changed the served certificate")
			}
			// Restore for the next case.
			ca.renew(t, files, egressID)
			if err := egress.Reload(); err != nil {
				t.Fatal(err)
			}
			before = serialOf(t, dialEcho(t, addr, ingress.ClientConfig(egressID)))
		})
	}
}

// TestWatch: Watch notices new files, logs a broken update once, keeps the
// old certificate meanwhile, and recovers when the files are fixed.
func TestWatch(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	var logs testio.Buffer
	egress, files := newLoggedStore(t, ca, egressID, &logs)
	ingress, _ := newStore(t, ca, ingressID)
	addr := echoServer(t, egress.ServerConfig(role.Ingress))
	live := dialEcho(t, addr, ingress.ClientConfig(egressID))
	first := serialOf(t, live)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); egress.Watch(ctx, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	serving := func() string {
		return serialOf(t, dialEcho(t, addr, ingress.ClientConfig(egressID))).String()
	}

	second, _ := ParseCertificate(ca.renew(t, files, egressID))
	wait.Until(t, 5*time.Second, "the watched certificate to be served", func() bool { return serving() == second.SerialNumber.String() })
	ping(t, live, "after watch reload")
	if serialOf(t, live).Cmp(first) != 0 {
		t.Fatal("the live connection changed certificates")
	}

	os.WriteFile(files.Cert, []byte("garbage"), 0o600)
	wait.Until(t, 5*time.Second, "the failed reload to be logged", func() bool { return strings.Contains(logs.String(), "reload failed") })
	if got := serving(); got != second.SerialNumber.String() {
		t.Fatalf("serving %s after a broken update, want the previous %s", got, second.SerialNumber)
	}

	third, _ := ParseCertificate(ca.renew(t, files, egressID))
	wait.Until(t, 5*time.Second, "the fixed certificate to be served", func() bool { return serving() == third.SerialNumber.String() })
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Error("key material in the logs")
	}
}

// TestWatchReportsOnce: each broken state of the files is logged once, not
// on every poll, and unchanged files cause no reload.
func TestWatchReportsOnce(t *testing.T) {
	ca := newTestCA(t, "mesh CA")
	var logs testio.Buffer
	certPEM, keyPEM := ca.issueValid(t, egressID)
	files := writeFiles(t, t.TempDir(), egressID.Name, certPEM, keyPEM, ca.certPEM)
	s, err := Load(files, testLogger(t, &logs))
	if err != nil {
		t.Fatal(err)
	}
	w := watcher{s: s, tried: s.cur.Load().digest}
	count := func(msg string) int { return strings.Count(logs.String(), msg) }

	w.poll()
	if count("reloaded") != 0 {
		t.Fatal("unchanged files were reloaded")
	}
	os.WriteFile(files.Cert, []byte("garbage"), 0o600)
	for range 3 {
		w.poll()
	}
	os.Remove(files.Key) // another broken state
	for range 3 {
		w.poll()
	}
	if n := count("reload failed"); n != 2 {
		t.Errorf("two broken states were reported %d times, want 2:\n%s", n, logs.String())
	}
	putFiles(t, files, certPEM, keyPEM, ca.certPEM) // back as loaded
	w.poll()
	if count("reloaded") != 0 || count("reload failed") != 2 {
		t.Errorf("restoring the loaded files reloaded or failed:\n%s", logs.String())
	}
	// Reload on demand (SIGHUP) is not repeated by the watcher.
	ca.renew(t, files, egressID)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	w.poll()
	w.poll()
	if n := count("reloaded"); n != 1 {
		t.Errorf("one new certificate reloaded %d times:\n%s", n, logs.String())
	}
}

func TestRequireRefusesAnotherIdentityOnReload(t *testing.T) {
	ca := newTestCA(t, "test CA")
	s, files := newStore(t, ca, Identity{Role: role.Egress, Hint: "wnam", Name: "e1"})
	s.Require(func(id Identity) error {
		if id.Name != "e1" {
			return errors.New("names another node")
		}
		return nil
	})
	ca.renew(t, files, Identity{Role: role.Egress, Hint: "wnam", Name: "e2"})
	if err := s.Reload(); err == nil || s.Identity().Name != "e1" {
		t.Fatalf("Reload = %v, identity %s: want a refusal keeping e1", err, s.Identity())
	}
}

// TestExpiry: the node certificate's end, and the CA file's earliest, follow
// a reload.
func TestExpiry(t *testing.T) {
	ca, other := newTestCA(t, "ca"), newTestCA(t, "second CA")
	now := time.Now().Truncate(time.Second)
	certPEM, keyPEM := ca.issueAt(t, egressID, now.Add(-time.Hour), now.Add(5*time.Hour))
	// A bundle: the CA that signed the node, and another that ends sooner.
	bundle := append(slices.Clone(ca.certPEM), other.certPEM...)
	f := writeFiles(t, t.TempDir(), "n", certPEM, keyPEM, bundle)
	s, err := Load(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, caEnd := s.Expiry()
	if !cert.Equal(now.Add(5 * time.Hour)) {
		t.Errorf("certificate ends %v, want %v", cert, now.Add(5*time.Hour))
	}
	if first := min(ca.cert.NotAfter.Unix(), other.cert.NotAfter.Unix()); caEnd.Unix() != first {
		t.Errorf("CA ends %v, want the earliest, %v", caEnd, time.Unix(first, 0))
	}
	ca.renew(t, f, egressID)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if cert2, _ := s.Expiry(); !cert2.After(cert) {
		t.Errorf("after renewal the certificate ends %v, not after %v", cert2, cert)
	}
}
