package cli

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/role"
)

var egressID = meshtls.Identity{Role: role.Egress, Hint: "wnam", Name: "wnam-1"}

// runCerts runs `ingress certs args...` in process.
func runCerts(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return run(t, role.Ingress, append([]string{"certs"}, args...)...)
}

// handshake runs a TLS handshake over a pipe and returns the error of the
// side that refused, if one did. In TLS 1.3 the client is done before the
// server has checked its certificate: the server's verdict comes last.
func handshake(server, client *tls.Config) error {
	sc, cc := net.Pipe()
	defer cc.Close()
	errc := make(chan error, 1)
	go func() {
		defer sc.Close()
		errc <- tls.Server(sc, server).Handshake()
	}()
	if err := tls.Client(cc, client).Handshake(); err != nil {
		cc.Close()
		<-errc
		return err
	}
	go io.Copy(io.Discard, cc) // what the server sends next: tickets, or its alert
	return <-errc
}

// wantErr fails t unless err says sub.
func wantErr(t *testing.T, what string, err error, sub string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Errorf("%s: error %v, want one containing %q", what, err, sub)
	}
}

func TestCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	out, _, err := runCerts(t, "init", "-dir", dir, "-days", "30")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem"} {
		if !strings.Contains(out, filepath.Join(dir, f)) {
			t.Errorf("init output does not name %s:\n%s", f, out)
		}
	}
	wantMode(t, filepath.Join(dir, "ca-key.pem"), 0o600)

	out, _, err = runCerts(t, "issue", "-dir", dir, "-name", "wnam-1", "-role", "egress", "-hint", "wnam", "-host", "10.0.0.7, egress.example")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caFile := filepath.Join(dir, "wnam-1.pem"), filepath.Join(dir, "wnam-1-key.pem"), filepath.Join(dir, "ca.pem")
	wantMode(t, key, 0o600)
	snippet := "tunnel:\n  tls:\n    cert: " + cert + "\n    key: " + key + "\n    ca: " + caFile + "\n"
	if !strings.Contains(out, snippet) {
		t.Errorf("issue output lacks the config snippet %q:\n%s", snippet, out)
	}
	if !strings.Contains(out, "llmesh://egress/wnam/wnam-1") {
		t.Errorf("issue output does not name the identity:\n%s", out)
	}

	b, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := meshtls.ParseCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := meshtls.IdentityOf(leaf); err != nil || id != egressID {
		t.Errorf("issued identity = %v, %v; want %v", id, err, egressID)
	}
	if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != "10.0.0.7" || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "egress.example" {
		t.Errorf("SANs = %v %v", leaf.IPAddresses, leaf.DNSNames)
	}
	if d := time.Until(leaf.NotAfter); d > 31*day || d < 29*day {
		t.Errorf("a 365-day certificate from a 30-day CA ends in %v, want the CA's end", d)
	}

	// The files load as a node's tunnel.tls.
	egress, err := meshtls.Load(meshtls.Files{Cert: cert, Key: key, CA: caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCerts(t, "issue", "-dir", dir, "-name", "hk-1", "-role", "ingress", "-hint", "-"); err != nil {
		t.Fatal(err)
	}
	ingress, err := meshtls.Load(meshtls.Files{Cert: filepath.Join(dir, "hk-1.pem"), Key: filepath.Join(dir, "hk-1-key.pem"), CA: caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ingress.Identity(); got != (meshtls.Identity{Role: role.Ingress, Name: "hk-1"}) {
		t.Errorf("ingress identity %v", got)
	}
	if err := handshake(egress.ServerConfig(role.Ingress), ingress.ClientConfig(egressID)); err != nil {
		t.Fatalf("handshake with issued certificates: %v", err)
	}

	// Re-issuing replaces the pair (renewal), which a running node reloads.
	if _, _, err := runCerts(t, "issue", "-dir", dir, "-name", "wnam-1", "-role", "egress", "-hint", "wnam"); err != nil {
		t.Fatal(err)
	}
	if err := egress.Reload(); err != nil {
		t.Fatal(err)
	}
	if egress.Certificate().Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("re-issue did not replace the certificate")
	}
	wantMode(t, key, 0o600)

	// init refuses to overwrite the CA.
	caBefore, _ := os.ReadFile(caFile)
	_, _, err = runCerts(t, "init", "-dir", dir)
	wantErr(t, "second init", err, "refusing to overwrite")
	if caAfter, _ := os.ReadFile(caFile); !bytes.Equal(caBefore, caAfter) {
		t.Error("second init changed ca.pem")
	}
}

func TestCertsUsage(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runCerts(t, "init", "-dir", dir); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no subcommand", nil, "usage: certs init"},
		{"unknown subcommand", []string{"rotate"}, `unknown subcommand "rotate"`},
		{"init without dir", []string{"init"}, "-dir is required"},
		{"unknown flag", []string{"issue", "-nmae", "x"}, "flag provided but not defined"},
		{"stray argument", []string{"issue", "-dir", dir, "-name", "x", "-role", "ingress", "extra"}, `unexpected argument "extra"`},
		{"bad role", []string{"issue", "-dir", dir, "-name", "x", "-role", "relay"}, `role "relay"`},
		{"bad name", []string{"issue", "-dir", dir, "-name", "../x", "-role", "ingress"}, "only letters"},
		{"egress without hint", []string{"issue", "-dir", dir, "-name", "x", "-role", "egress"}, "-hint is required for an egress"},
		{"zero days", []string{"issue", "-dir", dir, "-name", "x", "-role", "ingress", "-days", "0"}, "-days must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := runCerts(t, tt.args...)
			if !errors.Is(err, ErrUsage) {
				t.Errorf("err = %v, want ErrUsage", err)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
		})
	}

	if _, _, err := runCerts(t, "issue", "-h"); err != nil {
		t.Errorf("-h: %v, want nil", err)
	}
	_, _, err := runCerts(t, "issue", "-dir", t.TempDir(), "-name", "x", "-role", "ingress")
	wantErr(t, "issue without a CA", err, "run certs init first")
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s mode %o, want %o", path, got, want)
	}
}

// TestIssueNeverOverwritesTheCA: a node named after the CA's files would
// replace the CA and its key with a node pair.
func TestIssueNeverOverwritesTheCA(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runCerts(t, "init", "-dir", dir); err != nil {
		t.Fatal(err)
	}
	caCert, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	caKey, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	for _, name := range []string{"ca", "ca-key", "CA", "Ca-Key"} {
		for _, force := range []bool{false, true} {
			args := []string{"issue", "-dir", dir, "-name", name, "-role", "ingress"}
			if force {
				args = append(args, "-force")
			}
			_, stderr, err := runCerts(t, args...)
			if !errors.Is(err, ErrUsage) || !strings.Contains(stderr, "would overwrite the CA") {
				t.Errorf("%v: err %v, stderr %q", args, err, stderr)
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); !bytes.Equal(b, caCert) {
		t.Error("ca.pem changed")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem")); !bytes.Equal(b, caKey) {
		t.Error("ca-key.pem changed")
	}
	// The CA still signs.
	if _, _, err := runCerts(t, "issue", "-dir", dir, "-name", "hk-1", "-role", "ingress"); err != nil {
		t.Fatal(err)
	}
}

// TestIssueReplacesOnlyARenewal: re-issuing the same identity replaces the
// pair (renewal); files of another identity, or that are not a pair at all,
// are replaced only with -force.
func TestIssueReplacesOnlyARenewal(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runCerts(t, "init", "-dir", dir); err != nil {
		t.Fatal(err)
	}
	issue := func(args ...string) error {
		_, _, err := runCerts(t, append([]string{"issue", "-dir", dir}, args...)...)
		return err
	}
	if err := issue("-name", "e1", "-role", "egress", "-hint", "wnam"); err != nil {
		t.Fatal(err)
	}
	if err := issue("-name", "e1", "-role", "egress", "-hint", "wnam"); err != nil {
		t.Fatalf("renewal refused: %v", err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "e1.pem"))
	err := issue("-name", "e1", "-role", "egress", "-hint", "weur")
	wantErr(t, "another hint", err, "holds a certificate for llmesh://egress/wnam/e1, not llmesh://egress/weur/e1; pass -force")
	if after, _ := os.ReadFile(filepath.Join(dir, "e1.pem")); !bytes.Equal(before, after) {
		t.Error("a refused issue changed e1.pem")
	}
	// Node "e1"'s key file is e1-key.pem: node "e1-key"'s certificate file.
	err = issue("-name", "e1-key", "-role", "ingress")
	wantErr(t, "a name whose certificate is another's key", err, "e1-key.pem exists and holds no certificate")
	if err := issue("-name", "e1", "-role", "ingress", "-force"); err != nil {
		t.Fatalf("-force: %v", err)
	}
	// The other way round: issuing "a" when "a-key" exists.
	if err := issue("-name", "a-key", "-role", "ingress"); err != nil {
		t.Fatal(err)
	}
	err = issue("-name", "a", "-role", "ingress")
	wantErr(t, "a name whose key is another's certificate", err, "a-key.pem exists and holds no private key")
}

// TestIssueHint: a hint no node can have is refused; case is normalised as
// node.hint is.
func TestIssueHint(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runCerts(t, "init", "-dir", dir); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-name", "e1", "-role", "egress", "-hint", "us-west"},
		{"-name", "i1", "-role", "ingress", "-hint", "asia"},
	} {
		_, stderr, err := runCerts(t, append([]string{"issue", "-dir", dir}, args...)...)
		if !errors.Is(err, ErrUsage) || !strings.Contains(stderr, `is not a location hint; use one of wnam, enam, weur, eeur, apac, oc, afr, sam, me`) {
			t.Errorf("%v: err %v, stderr %q", args, err, stderr)
		}
	}
	if _, _, err := runCerts(t, "issue", "-dir", dir, "-name", "e2", "-role", "egress", "-hint", "WNAM"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "e2.pem"))
	leaf, _ := meshtls.ParseCertificate(b)
	if id, err := meshtls.IdentityOf(leaf); err != nil || id.Hint != "wnam" {
		t.Errorf("identity %v, %v; want hint wnam", id, err)
	}
}
