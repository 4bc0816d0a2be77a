package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

func TestMembersEndpoint(t *testing.T) {
	m, us, hk := standardMesh(t)
	for _, n := range []*node.Node{us, hk, m.nodes["wnam-1"]} {
		resp, body := do(t, newRequest(t, "GET", baseURL(n)+"/members", nil))
		if resp.StatusCode != 200 {
			t.Fatalf("%s /members: %d", n.Name(), resp.StatusCode)
		}
		var mr node.MembersResponse
		if err := json.Unmarshal([]byte(body), &mr); err != nil {
			t.Fatal(err)
		}
		got := map[string]node.MemberInfo{}
		for _, mem := range mr.Members {
			got[mem.Name] = mem
		}
		if len(got) != 5 {
			t.Fatalf("%s sees %d members: %s", n.Name(), len(got), body)
		}
		w := got["wnam-1"]
		if w.Role != "egress" || w.Hint != "wnam" || w.Loc != "US" || w.State != "alive" || w.Tunnel != m.nodes["wnam-1"].TunnelAddr() || w.Addr != m.nodes["wnam-1"].GossipAddr() {
			t.Errorf("%s's view of wnam-1: %+v", n.Name(), w)
		}
		h := got["hk-1"]
		if h.Role != "ingress" || h.Loc != "HK" || h.Tunnel != "" || h.State != "alive" {
			t.Errorf("%s's view of hk-1: %+v", n.Name(), h)
		}
	}
	// A graceful stop shows up as "left" everywhere else.
	m.stop("weur-1")
	wait.For(t, 5*time.Second, func() error {
		_, body := do(t, newRequest(t, "GET", baseURL(us)+"/members", nil))
		if !strings.Contains(body, `"state":"left"`) {
			return fmt.Errorf("weur-1 not left yet: %s", body)
		}
		return nil
	})
}

func TestHealth(t *testing.T) {
	m, _, hk := standardMesh(t)
	for _, n := range []*node.Node{hk, m.nodes["wnam-2"]} {
		resp, body := do(t, newRequest(t, "GET", baseURL(n)+"/health", nil))
		var h node.Health
		json.Unmarshal([]byte(body), &h)
		if resp.StatusCode != 200 || h.Status != "ok" || h.Node != n.Name() || h.Timestamp == "" {
			t.Fatalf("%s /health: %d %s", n.Name(), resp.StatusCode, body)
		}
		if _, err := time.Parse(time.RFC3339, h.Timestamp); err != nil {
			t.Fatalf("timestamp %q: %v", h.Timestamp, err)
		}
	}
	resp, body := do(t, newRequest(t, "GET", baseURL(hk)+"/metrics", nil))
	if resp.StatusCode != 200 || !strings.Contains(body, "llmesh_build_info") || !strings.Contains(body, `llmesh_members{hint="wnam",role="egress",state="alive"} 2`) ||
		!strings.Contains(body, `llmesh_members{hint="weur",role="egress",state="alive"} 1`) {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
}

func TestLoadIsShared(t *testing.T) {
	_, _, hk := standardMesh(t)
	seen := map[string]int{}
	for range 40 {
		resp, _ := do(t, newRequest(t, "GET", baseURL(hk)+"/openai/v1/models", nil))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		seen[resp.Header.Get("X-Mesh-Egress")]++
	}
	if len(seen) != 2 || seen["wnam-1"] == 0 || seen["wnam-2"] == 0 {
		t.Fatalf("egress use %v: want both wnam nodes and nothing else", seen)
	}
}

func TestClientHint(t *testing.T) {
	m, us, hk := standardMesh(t)
	req := newRequest(t, "GET", baseURL(hk)+"/openai/v1/models", nil)
	req.Header.Set("X-Mesh-Hint", "weur")
	resp, body := do(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "weur-1" || resp.Header.Get("X-Mesh-Hint") != "weur" {
		t.Fatalf("status %d egress %q: %s", resp.StatusCode, resp.Header.Get("X-Mesh-Egress"), body)
	}
	if line := m.accessLog(t, "hk-1", resp); !strings.Contains(line, "egress=weur-1 reason=client ") {
		t.Errorf("access log for a client hint: %s", line)
	}
	resp, _ = do(t, newRequest(t, "GET", baseURL(hk)+"/openai/v1/models", nil))
	if line := m.accessLog(t, "hk-1", resp); !strings.Contains(line, "route=egress") || !strings.Contains(line, "reason=rule ") {
		t.Errorf("access log for a rule: %s", line)
	}
	req = newRequest(t, "GET", baseURL(hk)+"/openai/v1/models", nil)
	req.Header.Set("X-Mesh-Hint", "mars")
	resp, body = do(t, req)
	wantError(t, resp, body, 400, "bad_hint", "openai")
	// us-1 does not allow client hints: the header is ignored.
	req = newRequest(t, "GET", baseURL(us)+"/openai/v1/models", nil)
	req.Header.Set("X-Mesh-Hint", "weur")
	resp, _ = do(t, req)
	if resp.Header.Get("X-Mesh-Route") != "direct" {
		t.Fatalf("client hint honoured where not allowed: %v", resp.Header)
	}
}

func TestFallback(t *testing.T) {
	m, _, _ := standardMesh(t)
	closed := closedURL(t)
	// No egress serves afr or sam in this mesh.
	fail := m.start(nodeSpec{role: role.Ingress, name: "sg-fail", loc: "SG", rules: []config.Rule{{Locs: []string{"SG"}, Hint: "afr"}}, providerURL: closed})
	direct := m.start(nodeSpec{role: role.Ingress, name: "sg-direct", loc: "SG", rules: []config.Rule{{Locs: []string{"SG"}, Hint: "afr"}}, fallback: "direct"})
	nearest := m.start(nodeSpec{role: role.Ingress, name: "sg-nearest", loc: "SG", rules: []config.Rule{{Locs: []string{"SG"}, Hint: "sam"}}, fallback: "nearest", providerURL: closed})
	for _, n := range []*node.Node{fail, direct, nearest} {
		m.waitMembers(n, "wnam-1", "wnam-2", "weur-1")
	}

	resp, body := do(t, newRequest(t, "POST", baseURL(fail)+"/gemini/v1beta/models/x:generateContent", strings.NewReader("{}")))
	wantError(t, resp, body, 503, "no_egress", "gemini")
	if !strings.Contains(body, "afr") {
		t.Fatalf("503 does not name the hint: %s", body)
	}

	resp, body = do(t, newRequest(t, "GET", baseURL(direct)+"/openai/v1/models", nil))
	if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Route") != "direct" {
		t.Fatalf("fallback direct: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if line := m.accessLog(t, "sg-direct", resp); !strings.Contains(line, "route=direct egress=\"\" reason=fallback-direct ") {
		t.Errorf("access log for fallback direct: %s", line)
	}

	// The nearest hint to sam that has a live egress is wnam (enam has none).
	resp, body = do(t, newRequest(t, "GET", baseURL(nearest)+"/openai/v1/models", nil))
	if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Route") != "egress" || resp.Header.Get("X-Mesh-Hint") != "wnam" {
		t.Fatalf("fallback nearest: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if line := m.accessLog(t, "sg-nearest", resp); !strings.Contains(line, "reason=fallback-nearest ") {
		t.Errorf("access log for fallback nearest: %s", line)
	}

	// When the pool comes back, requests use it again.
	m.start(nodeSpec{role: role.Egress, name: "afr-1", loc: "ZA", hint: "afr"})
	m.waitMembers(fail, "afr-1")
	wait.For(t, 5*time.Second, func() error {
		resp, body := do(t, newRequest(t, "GET", baseURL(fail)+"/openai/v1/models", nil))
		if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "afr-1" {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	})
}

func TestErrors(t *testing.T) {
	m, us, hk := standardMesh(t)
	closed := closedURL(t)
	unreachable := m.start(nodeSpec{role: role.Ingress, name: "us-broken", loc: "US", providerURL: closed})
	slow := m.start(nodeSpec{role: role.Ingress, name: "us-slow", loc: "US",
		edit: func(c *config.Config) { c.Upstream.HeaderTimeout = 300 * time.Millisecond }})
	m.start(nodeSpec{role: role.Egress, name: "oc-slow", loc: "AU", hint: "oc",
		edit: func(c *config.Config) { c.Upstream.HeaderTimeout = 300 * time.Millisecond }})
	badToken := m.start(nodeSpec{role: role.Ingress, name: "hk-badtoken", loc: "HK", token: "wrong-token",
		rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}, providerURL: closed})
	small := m.start(nodeSpec{role: role.Ingress, name: "us-small", loc: "US",
		edit: func(c *config.Config) { c.HTTP.MaxBodyBytes = 1024 }})
	m.waitMembers(hk, "oc-slow")
	m.waitMembers(badToken, "wnam-1", "wnam-2")

	big := strings.Repeat("x", 2048)
	tests := []struct {
		name         string
		n            *node.Node
		method, path string
		body         string
		header       map[string]string
		status       int
		code, style  string
	}{
		{"unknown provider", hk, "GET", "/nope/v1/models", "", nil, 404, "unknown_provider", "openai"},
		{"dot segment", us, "GET", "/openai/v1/../../admin", "", nil, 400, "bad_path", "openai"},
		{"encoded dot segment, anthropic shape", us, "GET", "/anthropic/v1/%2e%2e/x", "", nil, 400, "bad_path", "anthropic"},
		{"empty segment", hk, "GET", "/gemini/v1beta//models", "", nil, 400, "bad_path", "gemini"},
		{"encoded slash", us, "GET", "/openai/v1%2fmodels", "", nil, 400, "bad_path", "openai"},
		{"backslash", us, "GET", "/openai/v1%5cmodels", "", nil, 400, "bad_path", "openai"},
		{"trace", us, "TRACE", "/openai/v1/models", "", nil, 405, "method_not_allowed", "openai"},
		{"unreachable, anthropic shape", unreachable, "POST", "/anthropic/v1/messages", "{}", nil, 502, "upstream_unreachable", "anthropic"},
		{"timeout, direct", slow, "POST", "/openai/v1/chat/completions", `{"model":"m"}`, map[string]string{"X-Fake-Header-Delay": "5s"}, 504, "upstream_timeout", "openai"},
		{"timeout, through the tunnel", hk, "POST", "/anthropic/v1/messages", `{"model":"m"}`, map[string]string{"X-Fake-Header-Delay": "5s", "X-Mesh-Hint": "oc", "Anthropic-Version": "2023-06-01", "X-Api-Key": "k"}, 504, "upstream_timeout", "anthropic"},
		{"wrong tunnel token", badToken, "GET", "/gemini/v1beta/models", "", nil, 502, "tunnel_unauthenticated", "gemini"},
		{"body too large", small, "POST", "/anthropic/v1/messages", big, nil, 413, "body_too_large", "anthropic"},
		{"websocket upgrade, direct", us, "GET", "/openai/v1/realtime?model=m", "", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, 501, "websocket_not_supported", "openai"},
		{"websocket upgrade, gemini shape", hk, "GET", "/gemini/v1beta/models", "", map[string]string{"Connection": "Upgrade", "Upgrade": "WebSocket"}, 501, "websocket_not_supported", "gemini"},
		{"no provider route on egress", m.nodes["wnam-1"], "GET", "/openai/v1/models", "", nil, 404, "not_found", "openai"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req *http.Request
			if tc.body != "" {
				req = newRequest(t, tc.method, baseURL(tc.n)+tc.path, strings.NewReader(tc.body))
			} else {
				req = newRequest(t, tc.method, baseURL(tc.n)+tc.path, nil)
			}
			req.URL.Opaque = tc.path // send the path exactly as written
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, body := do(t, req)
			wantError(t, resp, body, tc.status, tc.code, tc.style)
		})
	}
}

// wantError checks a mesh error: status, X-Mesh-Error code and the JSON shape
// of the provider's SDK.
func wantError(t *testing.T, resp *http.Response, body string, status int, code, style string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("X-Mesh-Error") != code {
		t.Fatalf("status %d code %q, want %d %q: %s", resp.StatusCode, resp.Header.Get("X-Mesh-Error"), status, code, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	e, _ := v["error"].(map[string]any)
	msg, _ := e["message"].(string)
	switch style {
	case "openai":
		if e["code"] != code || e["type"] == nil {
			t.Fatalf("not the OpenAI shape: %s", body)
		}
	case "anthropic":
		if v["type"] != "error" || e["type"] == nil {
			t.Fatalf("not the Anthropic shape: %s", body)
		}
	case "gemini":
		if e["code"] != float64(status) || e["status"] == nil {
			t.Fatalf("not the Gemini shape: %s", body)
		}
	}
	if msg == "" {
		t.Fatalf("no message: %s", body)
	}
}

func TestCORS(t *testing.T) {
	_, _, hk := standardMesh(t)
	req := newRequest(t, "OPTIONS", baseURL(hk)+"/anthropic/v1/messages", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, x-api-key, anthropic-version, x-stainless-new-thing")
	resp, _ := do(t, req)
	allowed := resp.Header.Get("Access-Control-Allow-Headers")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("preflight %d %v", resp.StatusCode, resp.Header)
	}
	for _, h := range []string{"authorization", "x-api-key", "anthropic-version", "anthropic-beta", "content-type", "x-stainless-new-thing"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("Access-Control-Allow-Headers lacks %s: %q", h, allowed)
		}
	}
	req = newRequest(t, "GET", baseURL(hk)+"/openai/v1/models", nil)
	req.Header.Set("Origin", "https://app.example")
	resp, _ = do(t, req)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Mesh-Route") {
		t.Fatalf("CORS headers on a proxied response: %v", resp.Header)
	}
}
