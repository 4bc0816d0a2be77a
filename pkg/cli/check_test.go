package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/role"
)

// pki is a CA and node certificates for -check's tests, in dir.
type pki struct {
	t             *testing.T
	dir           string
	caCert, caKey []byte
	caFile        string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caCert, caKey, err := meshtls.NewCA("check-test-ca", 24*time.Hour*365)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{t: t, dir: dir, caCert: caCert, caKey: caKey, caFile: filepath.Join(dir, "ca.pem")}
	p.write("ca.pem", caCert)
	return p
}

func (p *pki) write(name string, b []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue writes a certificate for id, valid for validFor, and its key.
func (p *pki) issue(file string, id meshtls.Identity, validFor time.Duration) (cert, key string) {
	p.t.Helper()
	c, k, err := meshtls.Issue(p.caCert, p.caKey, id, nil, validFor)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(file+".pem", c), p.write(file+"-key.pem", k)
}

// tlsYAML is a tunnel section with these files.
func (p *pki) tlsYAML(cert, key string) string {
	return fmt.Sprintf("tunnel: {insecure: false, tls: {cert: %q, key: %q, ca: %q}}\n", cert, key, p.caFile)
}

// TestCheck: -check prints every problem of a config and of the files it
// names, one a line with its key, and fails; a valid config gets one ok
// line (and a warning for a certificate about to expire).
func TestCheck(t *testing.T) {
	p := newPKI(t)
	hk := meshtls.Identity{Role: role.Ingress, Name: "hk-1"}
	goodCert, goodKey := p.issue("hk-1", hk, 24*time.Hour*90)
	soonCert, soonKey := p.issue("hk-1-soon", hk, 24*time.Hour*10)
	otherCert, otherKey := p.issue("sg-1", meshtls.Identity{Role: role.Ingress, Name: "sg-1"}, 24*time.Hour*90)
	emptyKey := p.write("empty.key", []byte("\n"))
	const node = "node: {name: hk-1, loc: HK}\n"

	for _, tc := range []struct {
		name string
		role role.Role
		yaml string
		ok   bool
		want []string // every line printed, FILE standing for the config's path
	}{
		{name: "valid ingress", role: role.Ingress, ok: true, yaml: node + `
routing: {rules: [{locs: [HK], hint: wnam}]}
auth: {access_keys: [ak-1]}
providers: {openai: {api_key: sk-1}, groq: {base_url: "https://groq.example", disabled: true}}
`, want: []string{`FILE: ok: ingress "hk-1", 1 routing rule, 1 access key, 4 providers`}},
		{name: "every problem of the values", role: role.Ingress, yaml: `
node: {name: hk-1, loc: HKG}
routing:
  rules: [{locs: [HK], hint: wnam}, {locs: [CN, HK], hint: wnm}]
  fallback: sometimes
gossip: {key: "c2hvcnQ="}
providers: {openai: {api_key_file: "` + emptyKey + `"}}
auth: {access_keys: [ak-1]}
`, want: []string{
			`FILE: node.loc: must be an ISO 3166 alpha-2 code such as HK or US (got "HKG")`,
			`FILE: gossip.key: decodes to 5 bytes; an AES key must be 16, 24 or 32 bytes`,
			`FILE: routing.fallback: must be one of fail, direct, nearest (got "sometimes")`,
			`FILE: routing.rules[1].locs: HK is already routed by routing.rules[0]`,
			`FILE: routing.rules[1].hint: must be one of wnam, enam, weur, eeur, apac, oc, afr, sam, me (got "wnm")`,
			`FILE: providers.openai.api_key_file: "` + emptyKey + `" is empty`,
		}},
		{name: "the shape, with lines", role: role.Ingress, yaml: `
node: {name: hk-1, colour: blue}
routing: {rules: wnam}
`, want: []string{
			`FILE:2: node.colour: unknown key; known keys are name, loc, colo, hint`,
			`FILE:3: routing.rules: must be a list (got "wnam")`,
		}},
		{name: "open egress and missing files", role: role.Egress, yaml: `
node: {name: e-1}
tunnel: {tls: {cert: /nonexistent/c.pem, key: /nonexistent/k.pem, ca: /nonexistent/ca.pem}}
`, want: []string{
			`FILE: node.hint: required on an egress: ingress nodes pick an egress by its hint (one of wnam, enam, weur, eeur, apac, oc, afr, sam, me)`,
			`FILE: tunnel.tls.cert: file "/nonexistent/c.pem" does not exist`,
			`FILE: tunnel.tls.key: file "/nonexistent/k.pem" does not exist`,
			`FILE: tunnel.tls.ca: file "/nonexistent/ca.pem" does not exist`,
		}},
		{name: "key of another certificate", role: role.Ingress, yaml: node + p.tlsYAML(goodCert, otherKey), want: []string{
			`FILE: tunnel.tls: meshtls: certificate ` + goodCert + ` with key ` + otherKey + `: tls: private key does not match public key`,
		}},
		{name: "certificate of another node", role: role.Ingress, yaml: node + p.tlsYAML(otherCert, otherKey), want: []string{
			`FILE: tunnel.tls.cert: the certificate names llmesh://ingress/-/sg-1 but this node is llmesh://ingress/-/hk-1`,
		}},
		{name: "valid with TLS", role: role.Ingress, ok: true, yaml: node + p.tlsYAML(goodCert, goodKey), want: []string{
			`FILE: ok: ingress "hk-1", 0 routing rules, 0 access keys, 4 providers, tunnel certificate llmesh://ingress/-/hk-1 valid until ` +
				time.Now().Add(24*time.Hour*90).UTC().Format(time.DateOnly),
		}},
		{name: "expiring soon", role: role.Ingress, ok: true, yaml: node + p.tlsYAML(soonCert, soonKey), want: []string{
			`FILE: warning: tunnel.tls.cert: expires in 10 days`,
			`FILE: ok: ingress "hk-1"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := p.write(strings.ReplaceAll(tc.name, " ", "-")+".yaml", []byte(tc.yaml))
			stdout, _, err := run(t, tc.role, "-check", "-config", path)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v; output:\n%s", err, tc.ok, stdout)
			}
			if !tc.ok && (errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), fmt.Sprintf("%d problem", len(tc.want)))) {
				t.Errorf("err = %v, want the count of %d problems", err, len(tc.want))
			}
			got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("printed %d lines, want %d:\n%s", len(got), len(tc.want), stdout)
			}
			for i, w := range tc.want {
				w = strings.ReplaceAll(w, "FILE", path)
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("line %d:\n%s\nwant (a prefix)\n%s", i+1, got[i], w)
				}
			}
		})
	}
}

// TestCheckExpired: a certificate past its end is a problem, not a warning.
func TestCheckExpired(t *testing.T) {
	p := newPKI(t)
	cert, key := p.issue("hk-1", meshtls.Identity{Role: role.Ingress, Name: "hk-1"}, time.Millisecond)
	path := p.write("node.yaml", []byte("node: {name: hk-1}\n"+p.tlsYAML(cert, key)))
	wait.For(t, 5*time.Second, func() error {
		stdout, _, err := run(t, role.Ingress, "-check", "-config", path)
		if err == nil || !strings.Contains(stdout, path+": tunnel.tls: ") || !strings.Contains(stdout, "expired") {
			return fmt.Errorf("err %v, output %q", err, stdout)
		}
		return nil
	})
}
