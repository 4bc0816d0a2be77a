package node

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/role"
)

func TestParseMemberFilter(t *testing.T) {
	alive := membership.Member{Name: "a", State: membership.StateAlive, Meta: membership.Meta{Role: role.Egress, Hint: "wnam"}}
	dead := membership.Member{Name: "d", State: membership.StateDead, Meta: membership.Meta{Role: role.Ingress, Hint: "apac"}}
	noHint := membership.Member{Name: "n", State: membership.StateLeft, Meta: membership.Meta{Role: role.Ingress}}
	tests := []struct {
		query string
		match []string // names of alive, dead, noHint that match
		err   string   // part of the error; "" = none
	}{
		{"", []string{"a", "d", "n"}, ""},
		{"role=egress", []string{"a"}, ""},
		{"role=egress&role=ingress", []string{"a", "d", "n"}, ""},
		{"role=egress,ingress", []string{"a", "d", "n"}, ""},
		{"hint=wnam,apac", []string{"a", "d"}, ""},
		{"state=alive", []string{"a"}, ""},
		{"state=alive,%20dead", []string{"a", "d"}, ""},
		{"state=left&role=ingress", []string{"n"}, ""},
		{"role=ingress&hint=wnam", nil, ""},
		{"role=gateway", nil, `role "gateway" is not one of ingress, egress`},
		{"hint=WNAM", nil, `hint "WNAM" is not one of wnam`},
		{"state=suspect", nil, `state "suspect" is not one of alive, dead, left`},
		{"state=", nil, `state "" is not one of`},
		{"role=egress,", nil, `role "" is not one of`},
		{"roles=egress", nil, `unknown parameter "roles"`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parseMemberFilter(q)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range []membership.Member{alive, dead, noHint} {
				if f.match(m) {
					got = append(got, m.Name)
				}
			}
			if !slices.Equal(got, tt.match) {
				t.Errorf("matches %v, want %v", got, tt.match)
			}
		})
	}
}

// startTestNode starts a node on loopback with the local gossip profile.
func startTestNode(t *testing.T, r role.Role, name, hint string, edit func(*config.Config)) *Node {
	t.Helper()
	cfg := config.Default(r)
	cfg.Node = config.Node{Name: name, Loc: "US", Colo: "SJC", Hint: hint}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Gossip.Bind = "127.0.0.1:0"
	cfg.Gossip.Profile = "local"
	cfg.Tunnel.Insecure = true
	if r == role.Egress {
		cfg.Tunnel.Listen = "127.0.0.1:0"
	}
	if edit != nil {
		edit(cfg)
	}
	rt, err := cfg.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(rt, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestMembersFiltersAndEnvelope: /members on a real two-node mesh, with
// the admin listener and token: compact JSON, filters, 400 bad_filter in
// the error shape, the node's own load and rules; the status page beside
// it, without token.
func TestMembersFiltersAndEnvelope(t *testing.T) {
	eg := startTestNode(t, role.Egress, "eg-1", "wnam", func(c *config.Config) { c.Tunnel.Token = "t" })
	in := startTestNode(t, role.Ingress, "in-1", "", func(c *config.Config) {
		c.Gossip.Join = []string{eg.GossipAddr()}
		c.Admin = config.Admin{Listen: "127.0.0.1:0", Token: "admin-secret"}
		c.Routing.Rules = []config.Rule{{Locs: []string{"HK", "CN"}, Hint: "wnam"}}
		c.Tunnel.Token = "t"
	})
	wait.For(t, 10*time.Second, func() error {
		if m, ok := in.Members().Get("eg-1"); !ok || m.State != membership.StateAlive {
			return fmt.Errorf("in-1 does not see eg-1 alive: %+v", in.Members().Members)
		}
		return nil
	})
	admin := "http://" + in.adminLn.Addr().String()

	resp, body := get(t, admin+"/members?role=egress", "admin-secret")
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "\n ") {
		t.Fatalf("GET /members?role=egress = %d %q, want 200 compact JSON", resp.StatusCode, body)
	}
	var mr MembersResponse
	if err := json.Unmarshal([]byte(body), &mr); err != nil {
		t.Fatal(err)
	}
	if len(mr.Members) != 1 || mr.Members[0].Name != "eg-1" || mr.Members[0].Tunnel != eg.TunnelAddr() {
		t.Errorf("members = %+v, want eg-1 alone", mr.Members)
	}
	wantRouting := &RoutingInfo{Rules: []RuleInfo{{Locs: []string{"HK", "CN"}, Hint: "wnam"}}, Fallback: "fail"}
	if mr.Node == nil || mr.Node.Name != "in-1" || mr.Node.InFlight != 0 || fmt.Sprint(mr.Node.Routing) != fmt.Sprint(wantRouting) {
		t.Errorf("node = %+v, want in-1 with %+v", mr.Node, wantRouting)
	}

	resp, body = get(t, admin+"/members?state=dead", "admin-secret")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"members":[]`) {
		t.Errorf("GET /members?state=dead = %d %s, want an empty list", resp.StatusCode, body)
	}
	resp, body = get(t, admin+"/members?hint=mars", "admin-secret")
	var e struct {
		Error struct{ Message, Type, Code string }
	}
	if json.Unmarshal([]byte(body), &e); resp.StatusCode != http.StatusBadRequest || e.Error.Code != "bad_filter" ||
		!strings.Contains(e.Error.Message, `hint "mars"`) {
		t.Errorf("GET /members?hint=mars = %d %s, want 400 bad_filter", resp.StatusCode, body)
	}
	if resp, _ := get(t, admin+"/members", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /members without token = %d, want 401", resp.StatusCode)
	}

	// The page is on the admin listener, public (it holds no data); the
	// client-facing listener keeps refusing / as a malformed provider path.
	resp, body = get(t, admin+"/", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>llmesh status</title>") ||
		resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET / on the admin listener = %d %.80q", resp.StatusCode, body)
	}
	if resp, _ := get(t, "http://"+in.HTTPAddr()+"/", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET / on http.listen with admin.listen set = %d, want 400", resp.StatusCode)
	}
	// Without admin.listen, the page is where /members is.
	if resp, body := get(t, "http://"+eg.HTTPAddr()+"/", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "<!doctype html>") {
		t.Errorf("GET / on the egress = %d %.80q", resp.StatusCode, body)
	}
	// An egress reports its live tunnel streams, and no rules.
	_, body = get(t, "http://"+eg.HTTPAddr()+"/members", "")
	if !strings.Contains(body, `"node":{"name":"eg-1","in_flight":0}`) {
		t.Errorf("egress /members = %s, want its node entry without routing", body)
	}
}

// TestInFlightCounted: a request in flight through an ingress shows in
// its /members envelope while it lasts.
func TestInFlightCounted(t *testing.T) {
	release := make(chan struct{})
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release })}
	ln := listen(t)
	go upstream.Serve(ln)
	t.Cleanup(func() { upstream.Close() })
	in := startTestNode(t, role.Ingress, "in-1", "", func(c *config.Config) {
		p := c.Providers["openai"]
		p.BaseURL = "http://" + ln.Addr().String()
		c.Providers["openai"] = p
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.HTTPAddr()+"/openai/v1/models", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	inFlight := func() int64 {
		var mr MembersResponse
		_, body := get(t, "http://"+in.HTTPAddr()+"/members", "")
		json.Unmarshal([]byte(body), &mr)
		return mr.Node.InFlight
	}
	wait.Until(t, 10*time.Second, "one request in flight", func() bool { return inFlight() == 1 })
	close(release)
	<-done
	wait.Until(t, 10*time.Second, "no request in flight", func() bool { return inFlight() == 0 })
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// thousandMembers is a mesh of 1,000 nodes with realistic names and
// addresses, half of them egress nodes with a certificate.
func thousandMembers() *membership.Snapshot {
	s := &membership.Snapshot{}
	for i := range 1000 {
		hint := []string{"wnam", "enam", "weur", "apac"}[i%4]
		m := membership.Member{
			Name:  fmt.Sprintf("%s-node-%03d", hint, i),
			Addr:  fmt.Sprintf("198.51.%d.%d:7946", i/250, i%250),
			State: membership.StateAlive,
			Meta:  membership.Meta{Role: role.Ingress, Loc: "US", Colo: "SJC", Hint: hint, Version: "v0.4.1"},
		}
		if i%2 == 1 {
			m.Role, m.Tunnel, m.CertExpiry = role.Egress, fmt.Sprintf("198.51.%d.%d:9443", i/250, i%250), 1830297600
		}
		s.Members = append(s.Members, m)
	}
	return s
}

// TestMembersSize1000 states what /members costs at 1,000 nodes, before
// (indented) and now (compact), and that a filter cuts it.
func TestMembersSize1000(t *testing.T) {
	snap := thousandMembers()
	all := MembersResponse{Members: memberInfos(snap, memberFilter{})}
	compact, _ := json.Marshal(all)
	before := all
	for i := range before.Members {
		before.Members[i].CertExpiry = "" // not there before
	}
	indented, _ := json.MarshalIndent(before, "", "  ")
	without, _ := json.Marshal(before)
	egress, _ := json.Marshal(MembersResponse{Members: memberInfos(snap, memberFilter{roles: []string{"egress"}, hints: []string{"enam"}})})
	t.Logf("1,000 members: indented (before) %d B (%d B/member); compact %d B (%d B/member; %d B/member without cert_expiry); ?role=egress&hint=enam %d B",
		len(indented), len(indented)/1000, len(compact), len(compact)/1000, len(without)/1000, len(egress))
	if per := len(compact) / 1000; per > 200 {
		t.Errorf("compact /members is %d B per member, want at most 200", per)
	}
	if len(egress) > len(compact)/3 || len(egress) < len(compact)/5 {
		t.Errorf("?role=egress&hint=enam is %d B of %d, want its quarter of the members", len(egress), len(compact))
	}
}

// BenchmarkMembers1000 renders /members of a 1,000-node mesh.
func BenchmarkMembers1000(b *testing.B) {
	snap := thousandMembers()
	var size int
	for b.Loop() {
		out, _ := json.Marshal(MembersResponse{Members: memberInfos(snap, memberFilter{})})
		size = len(out)
	}
	b.ReportMetric(float64(size)/1000, "B/member")
}

// TestCertExpiryGossiped: a node gossips its certificate's expiry, and the
// new one after the certificate is renewed (reloaded, as on SIGHUP).
func TestCertExpiryGossiped(t *testing.T) {
	defer func(d time.Duration) { certCheckInterval = d }(certCheckInterval)
	certCheckInterval = 50 * time.Millisecond
	caCert, caKey, err := meshtls.NewCA("test CA", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := config.TLS{Cert: filepath.Join(dir, "eg.pem"), Key: filepath.Join(dir, "eg-key.pem"), CA: filepath.Join(dir, "ca.pem")}
	issue := func(days int) time.Time {
		cert, key, err := meshtls.Issue(caCert, caKey, meshtls.Identity{Role: role.Egress, Hint: "wnam", Name: "eg-1"}, []string{"127.0.0.1"}, time.Duration(days)*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for path, b := range map[string][]byte{paths.Cert: cert, paths.Key: key, paths.CA: caCert} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		block, _ := pem.Decode(cert)
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c.NotAfter
	}
	first := issue(30)
	eg := startTestNode(t, role.Egress, "eg-1", "wnam", func(c *config.Config) {
		c.Tunnel.TLS, c.Tunnel.Insecure = paths, false
	})
	in := startTestNode(t, role.Ingress, "in-1", "", func(c *config.Config) { c.Gossip.Join = []string{eg.GossipAddr()} })
	expiry := func() string {
		_, body := get(t, "http://"+in.HTTPAddr()+"/members?role=egress", "")
		var mr MembersResponse
		json.Unmarshal([]byte(body), &mr)
		if len(mr.Members) != 1 {
			return ""
		}
		return mr.Members[0].CertExpiry
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	wait.Until(t, 10*time.Second, "the ingress to see the first expiry", func() bool { return expiry() == rfc(first) })

	renewed := issue(90)
	if err := eg.Reload(); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the ingress to see the renewed expiry", func() bool { return expiry() == rfc(renewed) })
}
