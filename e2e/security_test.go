package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/llmesh/llmesh/internal/fakeprovider"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/cli"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
	"github.com/llmesh/llmesh/pkg/tunnel"
)

// meshCA issues node certificates into a temporary directory.
type meshCA struct {
	t          *testing.T
	dir        string
	cert, key  []byte
	caFilePath string
}

func newMeshCA(t *testing.T) *meshCA {
	t.Helper()
	cert, key, err := meshtls.NewCA("llmesh test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := &meshCA{t: t, dir: dir, cert: cert, key: key, caFilePath: filepath.Join(dir, "ca.pem")}
	os.WriteFile(ca.caFilePath, cert, 0o600)
	return ca
}

// tls returns a config edit that gives the node a certificate for id.
func (ca *meshCA) tls(r role.Role, hint, name string) func(*config.Config) {
	ca.t.Helper()
	cert, key, err := meshtls.Issue(ca.cert, ca.key, meshtls.Identity{Role: r, Hint: hint, Name: name}, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		ca.t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	os.WriteFile(certPath, cert, 0o600)
	os.WriteFile(keyPath, key, 0o600)
	caPath := ca.caFilePath
	return func(c *config.Config) {
		c.Tunnel.TLS = config.TLS{Cert: certPath, Key: keyPath, CA: caPath}
		c.Tunnel.Insecure = false
	}
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req := newRequest(t, "GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

// TestMutualTLS: a mesh whose tunnel runs on certificates of one CA works;
// an ingress holding a certificate of another CA, and an egress whose
// certificate names another hint than gossip claims, are refused.
func TestMutualTLS(t *testing.T) {
	m := newMesh(t)
	ca := newMeshCA(t)
	rules := []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}
	m.start(nodeSpec{role: role.Egress, name: "tls-wnam-1", loc: "US", hint: "wnam", edit: ca.tls("egress", "wnam", "tls-wnam-1")})
	hk := m.start(nodeSpec{role: role.Ingress, name: "tls-hk-1", loc: "HK", rules: rules, providerURL: closedURL(t),
		edit: ca.tls("ingress", "", "tls-hk-1")})
	m.waitMembers(hk, "tls-wnam-1")
	wait.For(t, 10*time.Second, func() error {
		resp, body := get(t, baseURL(hk)+"/openai/v1/models")
		if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "tls-wnam-1" {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	})

	// Certificates from another CA: the egress refuses this ingress, which
	// then has no usable egress and never reaches the provider.
	before := m.provider.Stats().Requests
	other := newMeshCA(t)
	rogue := m.start(nodeSpec{role: role.Ingress, name: "rogue-hk", loc: "HK", rules: rules, providerURL: closedURL(t),
		edit: other.tls("ingress", "", "rogue-hk")})
	m.waitMembers(rogue, "tls-wnam-1")
	for range 3 {
		resp, body := get(t, baseURL(rogue)+"/openai/v1/models")
		if code := resp.Header.Get("X-Mesh-Error"); code != "egress_unavailable" && code != "no_egress" {
			t.Fatalf("an ingress with a foreign CA got %d: %s", resp.StatusCode, body)
		}
	}

	// An impostor holds the gossip key and a genuine certificate, but for
	// weur, and gossips that it is a wnam egress. The ingress refuses its
	// certificate, so no request ever reaches it.
	var impostorHits atomic.Int32
	impostor := startImpostor(t, m, ca, "liar", "wnam", "weur", &impostorHits)
	defer impostor()
	m.waitMembers(hk, "liar")
	for range 20 {
		resp, body := get(t, baseURL(hk)+"/openai/v1/models")
		if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "tls-wnam-1" {
			t.Fatalf("status %d via %q: %s", resp.StatusCode, resp.Header.Get("X-Mesh-Egress"), body)
		}
	}
	if n := impostorHits.Load(); n != 0 {
		t.Fatalf("the impostor served %d requests", n)
	}
	if got := m.provider.Stats().Requests - before; got != 20 {
		t.Fatalf("provider saw %d requests, want the 20 sent through the genuine egress", got)
	}
}

// startImpostor runs a tunnel server with a certificate for certHint and
// gossips that it is an egress of claimHint.
func startImpostor(t *testing.T, m *mesh, ca *meshCA, name, claimHint, certHint string, hits *atomic.Int32) func() {
	t.Helper()
	cfg := config.Default(role.Egress)
	ca.tls("egress", certHint, name)(cfg)
	store, err := meshtls.Load(meshtls.Files{Cert: cfg.Tunnel.TLS.Cert, Key: cfg.Tunnel.TLS.Key, CA: cfg.Tunnel.TLS.CA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := tunnel.NewServer(tunnel.ServerConfig{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }),
		TLS:     credentials.NewTLS(store.ServerConfig(role.Ingress)),
	})
	g := srv.GRPCServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	mem, err := membership.Start(membership.Config{
		Name: name, Bind: "127.0.0.1:0", Profile: "local", Join: []string{m.seed},
		Meta: membership.Meta{Role: "egress", Hint: claimHint, Tunnel: ln.Addr().String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() { mem.Shutdown(); g.Stop() }
}

// TestNodeRefusesCertificateOfAnotherHint: a node does not start with a
// certificate that names another hint than its config.
func TestNodeRefusesCertificateOfAnotherHint(t *testing.T) {
	ca := newMeshCA(t)
	cfg := config.Default(role.Egress)
	cfg.Node = config.Node{Name: "e1", Hint: "wnam"}
	cfg.HTTP.Listen, cfg.Gossip.Bind, cfg.Tunnel.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	ca.tls("egress", "weur", "e1")(cfg)
	rt, err := cfg.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Start(rt, slog.New(slog.DiscardHandler), node.Options{}); err == nil || !strings.Contains(err.Error(), "names llmesh://egress/weur/e1") {
		t.Fatalf("egress started with a certificate for another hint: %v", err)
	}
}

// TestAccessKeysAndKeyInjection: clients present access keys; the provider
// sees only the real key, which lives on the node that calls it and never
// crosses the tunnel.
func TestAccessKeysAndKeyInjection(t *testing.T) {
	m := newMesh(t)
	managed := func(c *config.Config) {
		yes := true
		for name, p := range c.Providers {
			p.ManagedKey = &yes
			c.Providers[name] = p
		}
		c.Auth.AccessKeys = []config.AccessKey{{Key: "ak-alpha"}, {Key: "ak-beta"}}
	}
	realKeys := func(c *config.Config) {
		for name, p := range c.Providers {
			p.APIKey = config.Secret("sk-real-" + name)
			c.Providers[name] = p
		}
	}
	// The egress holds the real keys; the HK ingress holds none.
	m.start(nodeSpec{role: role.Egress, name: "key-wnam", loc: "US", hint: "wnam", edit: realKeys})
	hk := m.start(nodeSpec{role: role.Ingress, name: "key-hk", loc: "HK", rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}},
		providerURL: closedURL(t), edit: managed})
	// A direct ingress holds its own real keys.
	us := m.start(nodeSpec{role: role.Ingress, name: "key-us", loc: "US", edit: func(c *config.Config) { realKeys(c); managed(c) }})
	m.waitMembers(hk, "key-wnam")

	seen := func() fakeprovider.Request {
		reqs := m.provider.Requests()
		return reqs[len(reqs)-1]
	}
	for _, n := range []*node.Node{hk, us} {
		t.Run(n.Name(), func(t *testing.T) {
			for _, tc := range []struct {
				name, path string
				header     []string
				slot, want string
			}{
				{"openai bearer", "/openai/v1/echo/headers", []string{"Authorization", "Bearer ak-alpha"}, "Authorization", "Bearer sk-real-openai"},
				{"anthropic x-api-key", "/anthropic/v1/echo/headers", []string{"X-Api-Key", "ak-beta", "Authorization", "Bearer other"}, "X-Api-Key", "sk-real-anthropic"},
				{"anthropic bearer (JS SDK)", "/anthropic/v1/echo/headers", []string{"Authorization", "Bearer ak-alpha"}, "X-Api-Key", "sk-real-anthropic"},
				{"gemini header", "/gemini/v1beta/echo/headers", []string{"X-Goog-Api-Key", "ak-alpha"}, "X-Goog-Api-Key", "sk-real-gemini"},
				{"gemini query", "/gemini/v1beta/echo/headers?alt=sse&key=ak-beta", nil, "X-Goog-Api-Key", "sk-real-gemini"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					resp, body := get(t, baseURL(n)+tc.path, tc.header...)
					if resp.StatusCode != 200 {
						t.Fatalf("status %d: %s", resp.StatusCode, body)
					}
					got := seen()
					if v := got.Header.Get(tc.slot); v != tc.want {
						t.Errorf("provider got %s %q, want %q", tc.slot, v, tc.want)
					}
					all := fmt.Sprint(got.Header) + got.RawQuery
					if strings.Contains(all, "ak-alpha") || strings.Contains(all, "ak-beta") || strings.Contains(all, "other") {
						t.Errorf("a client credential reached the provider: %v ?%s", got.Header, got.RawQuery)
					}
					if strings.Contains(tc.path, "alt=sse") && got.RawQuery != "alt=sse" {
						t.Errorf("query %q, want the key removed and the rest kept", got.RawQuery)
					}
				})
			}
			resp, body := get(t, baseURL(n)+"/openai/v1/models")
			wantError(t, resp, body, 401, "missing_access_key", "openai")
			resp, body = get(t, baseURL(n)+"/anthropic/v1/messages", "X-Api-Key", "sk-ant-guess")
			wantError(t, resp, body, 403, "invalid_access_key", "anthropic")
		})
	}
}

// TestScopedAccessKeysAndDisabledProvider: through the real mesh, a key
// that names its providers works on those only (the ingress refuses the
// others before the tunnel), the egress that holds the real key sets the
// OpenAI organization and project, not the client, and a disabled built-in
// is an unknown provider.
func TestScopedAccessKeysAndDisabledProvider(t *testing.T) {
	m := newMesh(t)
	yes := true
	m.start(nodeSpec{role: role.Egress, name: "scope-wnam", loc: "US", hint: "wnam", edit: func(c *config.Config) {
		for _, name := range []string{"openai", "anthropic"} {
			p := c.Providers[name]
			p.APIKey = config.Secret("sk-real-" + name)
			c.Providers[name] = p
		}
		p := c.Providers["openai"]
		p.Organization, p.Project = "org-operator", "proj_operator"
		c.Providers["openai"] = p
	}})
	hk := m.start(nodeSpec{role: role.Ingress, name: "scope-hk", loc: "HK", rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}},
		providerURL: closedURL(t), edit: func(c *config.Config) {
			for _, name := range []string{"openai", "anthropic"} {
				p := c.Providers[name]
				p.ManagedKey = &yes
				c.Providers[name] = p
			}
			p := c.Providers["openrouter"]
			p.Disabled = true
			c.Providers["openrouter"] = p
			c.Auth.AccessKeys = []config.AccessKey{{Key: "ak-all"}, {Key: "ak-openai", Providers: []string{"openai"}}}
		}})
	m.waitMembers(hk, "scope-wnam")
	base := baseURL(hk)
	before := len(m.provider.Requests())

	resp, body := get(t, base+"/anthropic/v1/messages", "X-Api-Key", "ak-openai")
	wantError(t, resp, body, 403, "access_key_not_allowed", "anthropic")
	resp, body = get(t, base+"/openrouter/api/v1/models", "Authorization", "Bearer sk-or-own")
	wantError(t, resp, body, 404, "unknown_provider", "openai")
	if strings.Contains(body, "openrouter\"") || strings.Contains(body, ", openrouter") {
		t.Errorf("a disabled provider is listed: %s", body)
	}
	if n := len(m.provider.Requests()); n != before {
		t.Fatalf("the provider was called %d times for refused requests", n-before)
	}

	for _, key := range []string{"ak-openai", "ak-all"} {
		resp, body = get(t, base+"/openai/v1/echo/headers", "Authorization", "Bearer "+key,
			"OpenAI-Organization", "org-client", "OpenAI-Project", "proj_client")
		if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Route") != "egress" {
			t.Fatalf("%s: status %d route %q: %s", key, resp.StatusCode, resp.Header.Get("X-Mesh-Route"), body)
		}
		reqs := m.provider.Requests()
		got := reqs[len(reqs)-1].Header
		if got.Get("Authorization") != "Bearer sk-real-openai" || got.Get("Openai-Organization") != "org-operator" || got.Get("Openai-Project") != "proj_operator" {
			t.Errorf("%s: provider got %v", key, got)
		}
	}
	resp, body = get(t, base+"/anthropic/v1/echo/headers", "X-Api-Key", "ak-all")
	if resp.StatusCode != 200 {
		t.Fatalf("all-provider key on anthropic: %d %s", resp.StatusCode, body)
	}
}

// TestHostileInputsReachNothingElse sends path tricks, absolute-form targets,
// CONNECT and Host games through both paths. A canary listener must receive
// nothing, and the provider nothing but what was meant for it.
func TestHostileInputsReachNothingElse(t *testing.T) {
	m, us, hk := standardMesh(t)
	canary, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var touched atomic.Int32
	go func() {
		for {
			c, err := canary.Accept()
			if err != nil {
				return
			}
			touched.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { canary.Close() })
	cAddr := canary.Addr().String()

	requests := []struct {
		line   string // request line, sent raw
		header string
		want   int
	}{
		{"GET //" + cAddr + "/x HTTP/1.1", "", 400},
		{"GET /openai//" + cAddr + "/x HTTP/1.1", "", 400},
		{"GET /openai/../" + cAddr + " HTTP/1.1", "", 400},
		{"GET /openai/%2e%2e/%2e%2e/x HTTP/1.1", "", 400},
		{"GET /openai/v1%2f..%2f..%2f" + cAddr + " HTTP/1.1", "", 400},
		{"GET /openai/v1\\..\\x HTTP/1.1", "", 400},
		{"GET http://" + cAddr + "/openai/v1/models HTTP/1.1", "", 400},
		{"GET /openai/v1/%0d%0aHost:" + cAddr + " HTTP/1.1", "", 400},
		{"CONNECT " + cAddr + " HTTP/1.1", "", 405},
		{"TRACE /openai/v1/models HTTP/1.1", "", 405},
		{"GET /" + cAddr + "/v1/models HTTP/1.1", "", 404},
		{"GET /openai@" + cAddr + "/v1 HTTP/1.1", "", 404},
		// These are legitimate provider paths: they reach the provider, never the canary.
		{"GET /openai/@" + cAddr + "/echo/headers HTTP/1.1", "", 200},
		{"GET /openai/v1/echo/headers HTTP/1.1", "X-Forwarded-Host: " + cAddr + "\r\nForwarded: host=" + cAddr + "\r\n", 200},
	}
	for _, n := range []*node.Node{us, hk} {
		for _, r := range requests {
			status := rawRequest(t, n.HTTPAddr(), r.line, "Host: "+cAddr+"\r\n"+r.header)
			if status != r.want {
				t.Errorf("%s: %q answered %d, want %d", n.Name(), r.line, status, r.want)
			}
		}
	}
	for _, req := range m.provider.Requests() {
		if req.Host == cAddr || strings.Contains(req.Path, cAddr) && !strings.HasPrefix(req.Path, "/@") {
			t.Errorf("the provider saw %s %s (host %s)", req.Method, req.Path, req.Host)
		}
	}
	if n := touched.Load(); n != 0 {
		t.Fatalf("the canary was contacted %d times", n)
	}
}

// rawRequest sends one request exactly as written and returns the status.
func rawRequest(t *testing.T, addr, line, header string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s\r\n%sConnection: close\r\n\r\n", line, header)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestNoSecretInLogs runs a mesh at debug level with every kind of secret
// configured and sent in every slot, then scans every log line.
func TestNoSecretInLogs(t *testing.T) {
	m := newMesh(t)
	gossipKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	secrets := []string{"tunnel-tok-SECRET1", gossipKey, "ak-SECRET2", "sk-real-SECRET3", "sk-client-SECRET4", "gm-query-SECRET5", "admin-SECRET6"}
	common := func(c *config.Config) {
		c.Tunnel.Token = config.Secret(secrets[0])
		c.Gossip.Key = config.Secret(gossipKey)
		c.Admin.Token = config.Secret(secrets[6])
		c.Log.Level = "debug"
	}
	m.start(nodeSpec{role: role.Egress, name: "sec-wnam", loc: "US", hint: "wnam", token: secrets[0], edit: func(c *config.Config) {
		common(c)
		p := c.Providers["openai"]
		p.APIKey = config.Secret(secrets[3])
		c.Providers["openai"] = p
	}})
	hk := m.start(nodeSpec{role: role.Ingress, name: "sec-hk", loc: "HK", token: secrets[0], rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}},
		providerURL: closedURL(t), edit: func(c *config.Config) {
			common(c)
			yes := true
			p := c.Providers["openai"]
			p.ManagedKey = &yes
			c.Providers["openai"] = p
			c.Auth.AccessKeys = []config.AccessKey{{Key: config.Secret(secrets[2])}}
		}})
	m.waitMembers(hk, "sec-wnam")
	base := baseURL(hk)
	get(t, base+"/openai/v1/models", "Authorization", "Bearer "+secrets[2])
	get(t, base+"/openai/v1/models", "Authorization", "Bearer "+secrets[4])
	get(t, base+"/anthropic/v1/messages", "X-Api-Key", secrets[4], "Authorization", "Bearer "+secrets[4])
	get(t, base+"/gemini/v1beta/models?key="+secrets[5], "X-Goog-Api-Key", secrets[4])
	get(t, base+"/gemini/v1beta/models?key="+secrets[5]+"&x=%zz")
	get(t, base+"/members", "Authorization", "Bearer "+secrets[6])
	get(t, base+"/members", "Authorization", "Bearer wrong-"+secrets[6])
	// Failures log errors: an unreachable provider with the key in the URL.
	broken := m.start(nodeSpec{role: role.Ingress, name: "sec-broken", loc: "US", providerURL: closedURL(t), edit: common})
	get(t, baseURL(broken)+"/gemini/v1beta/models?key="+secrets[5], "X-Goog-Api-Key", secrets[4])
	m.stop("sec-broken")

	logs := m.logs.String()
	if !strings.Contains(logs, "level=DEBUG") || !strings.Contains(logs, "upstream failed") {
		t.Fatalf("the scan needs debug logs and an error line; got:\n%.2000s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, s) {
					t.Errorf("secret %q in log line: %s", s[:6]+"…", line)
				}
			}
		}
	}
}

// TestAdminSurface: admin.token guards /members and /metrics; admin.listen
// moves them off the public listener; /health stays public.
func TestAdminSurface(t *testing.T) {
	m := newMesh(t)
	adminLn, _ := net.Listen("tcp", "127.0.0.1:0")
	adminAddr := adminLn.Addr().String()
	adminLn.Close()
	n := m.start(nodeSpec{role: role.Ingress, name: "adm", loc: "US", edit: func(c *config.Config) {
		c.Admin.Token = "adm-token"
		c.Admin.Listen = adminAddr
	}})
	pub := baseURL(n)
	for _, tc := range []struct {
		url    string
		header []string
		want   int
	}{
		{pub + "/health", nil, 200},
		{pub + "/members", []string{"Authorization", "Bearer adm-token"}, 404},
		{pub + "/metrics", nil, 404},
		{"http://" + adminAddr + "/health", nil, 200},
		{"http://" + adminAddr + "/members", nil, 401},
		{"http://" + adminAddr + "/members", []string{"Authorization", "Bearer nope"}, 401},
		{"http://" + adminAddr + "/members", []string{"Authorization", "Bearer adm-token"}, 200},
		{"http://" + adminAddr + "/metrics", []string{"Authorization", "Bearer adm-token"}, 200},
		{"http://" + adminAddr + "/openai/v1/models", nil, 404},
		// Profiles: the admin listener only, with the token only.
		{pub + "/debug/pprof/", []string{"Authorization", "Bearer adm-token"}, 404},
		{"http://" + adminAddr + "/debug/pprof/", nil, 401},
		{"http://" + adminAddr + "/debug/pprof/heap?debug=1", []string{"Authorization", "Bearer nope"}, 401},
		{"http://" + adminAddr + "/debug/pprof/", []string{"Authorization", "Bearer adm-token"}, 200},
		{"http://" + adminAddr + "/debug/pprof/heap?debug=1", []string{"Authorization", "Bearer adm-token"}, 200},
	} {
		resp, body := get(t, tc.url, tc.header...)
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d: %.200s", tc.url, resp.StatusCode, tc.want, body)
		}
	}
	// Without an admin token, no profiles even on the admin listener.
	openLn, _ := net.Listen("tcp", "127.0.0.1:0")
	openAddr := openLn.Addr().String()
	openLn.Close()
	m.start(nodeSpec{role: role.Ingress, name: "adm-open", loc: "US", edit: func(c *config.Config) { c.Admin.Listen = openAddr }})
	if resp, body := get(t, "http://"+openAddr+"/debug/pprof/"); resp.StatusCode != 404 {
		t.Errorf("profiles without admin.token: %d %.200s", resp.StatusCode, body)
	}

	var out, errOut bytes.Buffer
	members := []string{"members", "-addr", "http://" + adminAddr}
	if err := cli.Run(context.Background(), role.Ingress, members, &out, &errOut, nil); err == nil {
		t.Error("members without the admin token succeeded")
	}
	if err := cli.Run(context.Background(), role.Ingress, append(members, "-token", "adm-token"), &out, &errOut, nil); err != nil || !strings.Contains(out.String(), "adm") {
		t.Errorf("members -token: %v\n%s", err, out.String())
	}
}

// TestLimits: oversized headers get 431; beyond max_in_flight, requests get
// a quick 503 with Retry-After.
func TestLimits(t *testing.T) {
	m := newMesh(t)
	n := m.start(nodeSpec{role: role.Ingress, name: "lim", loc: "US", edit: func(c *config.Config) {
		c.HTTP.MaxInFlight = 1
		c.HTTP.MaxHeaderBytes = 4 << 10
	}})
	// Just over the limit: 431 in the provider's shape, nothing sent on.
	for _, c := range []struct{ path, style string }{
		{"/openai/v1/models", "openai"},
		{"/anthropic/v1/messages", "anthropic"},
		{"/gemini/v1beta/models", "gemini"},
	} {
		req := newRequest(t, "GET", baseURL(n)+c.path, nil)
		req.Header.Set("X-Big", strings.Repeat("a", 5<<10))
		resp, body := do(t, req)
		wantError(t, resp, body, 431, "header_too_large", c.style)
	}
	// Far over it, Go's server refuses before any handler runs (plain text).
	req := newRequest(t, "GET", baseURL(n)+"/openai/v1/models", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	if resp, _ := do(t, req); resp.StatusCode != 431 {
		t.Fatalf("oversized header: %d, want 431", resp.StatusCode)
	}
	// At the limit's edge, a head that fits still goes through.
	req = newRequest(t, "GET", baseURL(n)+"/openai/v1/models", nil)
	req.Header.Set("X-Fits", strings.Repeat("a", 3<<10))
	if resp, body := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("a head under the limit: %d %s", resp.StatusCode, body)
	}
	if got := m.provider.Stats().Requests; got != 1 {
		t.Fatalf("the provider saw %d requests, want only the one that fit", got)
	}

	release := m.holdRequest(t, n)
	resp, body := get(t, baseURL(n)+"/anthropic/v1/models")
	wantError(t, resp, body, 503, "over_capacity", "anthropic")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	release()
}

// TestGossipWithWrongKey: a node with another gossip key never appears.
func TestGossipWithWrongKey(t *testing.T) {
	m := newMesh(t)
	key := func(b byte) func(*config.Config) {
		return func(c *config.Config) {
			c.Gossip.Key = config.Secret(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)))
		}
	}
	a := m.start(nodeSpec{role: role.Ingress, name: "key-a", loc: "US", edit: key(1)})
	b := m.start(nodeSpec{role: role.Egress, name: "key-b", loc: "US", hint: "wnam", edit: key(1)})
	m.start(nodeSpec{role: role.Egress, name: "key-x", loc: "US", hint: "wnam", edit: key(2)})
	m.start(nodeSpec{role: role.Egress, name: "key-none", loc: "US", hint: "wnam"})
	m.waitMembers(a, "key-b")
	// Give the intruders several rejoin rounds (rejoin_interval is 1 s here).
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		for _, n := range []*node.Node{a, b} {
			_, body := get(t, baseURL(n)+"/members")
			if strings.Contains(body, "key-x") || strings.Contains(body, "key-none") {
				t.Fatalf("%s lists a node without the gossip key: %s", n.Name(), body)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSlowHeaders: a client that dribbles its request headers (slowloris)
// is cut off after http.read_header_timeout.
func TestSlowHeaders(t *testing.T) {
	m := newMesh(t)
	n := m.start(nodeSpec{role: role.Ingress, name: "slow", loc: "US", edit: func(c *config.Config) {
		c.HTTP.ReadHeaderTimeout = 300 * time.Millisecond
	}})
	c, err := net.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /openai/v1/models HTTP/1.1\r\nHost: x\r\n") // and never the blank line
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still holds a connection with unfinished headers after %s", time.Since(start))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %s", d)
	}
}

// holdRequest keeps one request to n waiting at the provider (which holds
// its answer) until the returned release, which waits until n serves again.
func (m *mesh) holdRequest(t *testing.T, n *node.Node) (release func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	slow, _ := http.NewRequestWithContext(ctx, "POST", baseURL(n)+"/openai/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	slow.Header.Set("X-Fake-Header-Delay", "1m")
	go http.DefaultClient.Do(slow)
	wait.For(t, 5*time.Second, func() error {
		if m.provider.Stats().Active != 1 {
			return fmt.Errorf("the held request has not reached the provider")
		}
		return nil
	})
	return func() {
		t.Helper()
		cancel()
		wait.For(t, 5*time.Second, func() error {
			if resp, _ := get(t, baseURL(n)+"/openai/v1/models"); resp.StatusCode != 200 {
				return fmt.Errorf("status %d after the held request ended", resp.StatusCode)
			}
			return nil
		})
	}
}
