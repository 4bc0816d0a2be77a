package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/tunnel"
)

// managedRegistry holds managed openai, anthropic and gemini providers with
// real keys, and a pass-through openrouter, all in front of up.
func managedRegistry(t *testing.T, up string) *provider.Registry {
	t.Helper()
	var ps []*provider.Provider
	for name, style := range map[string]provider.Style{
		"openai": provider.StyleOpenAI, "anthropic": provider.StyleAnthropic, "gemini": provider.StyleGemini,
	} {
		p := newProvider(t, name, up, style, 1<<20)
		p.Managed, p.APIKey = true, "sk-real-"+name
		ps = append(ps, p)
	}
	ps = append(ps, newProvider(t, "openrouter", up, provider.StyleOpenAI, 1<<20))
	return provider.NewRegistry(ps...)
}

// TestAccessKeyScopes: a key that names its providers works on those only;
// the refusal is a 403 in the provider's shape with its own code, and the
// provider never hears of it.
func TestAccessKeyScopes(t *testing.T) {
	checkLeaks(t)
	got := make(chan http.Header, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	h := newHandler(t, Config{Providers: managedRegistry(t, up.URL), Router: routeTo(Target{Route: "direct"}),
		AccessKeys: []AccessKey{
			{Key: "ak-all"},
			{Key: "ak-team", Providers: []string{"openai", "anthropic"}},
			{Key: "ak-gemini", Providers: []string{"gemini"}},
		}})
	tests := []struct {
		name, path, header, key string
		status                  int
		code                    string
		style                   provider.Style
	}{
		{"all-provider key", "/gemini/v1beta/models", "X-Goog-Api-Key", "ak-all", 200, "", ""},
		{"scoped key, granted", "/openai/v1/models", "Authorization", "Bearer ak-team", 200, "", ""},
		{"scoped key, granted (anthropic)", "/anthropic/v1/messages", "X-Api-Key", "ak-team", 200, "", ""},
		{"scoped key, not granted", "/gemini/v1beta/models", "X-Goog-Api-Key", "ak-team", 403, "access_key_not_allowed", provider.StyleGemini},
		{"other scoped key, not granted", "/anthropic/v1/messages", "X-Api-Key", "ak-gemini", 403, "access_key_not_allowed", provider.StyleAnthropic},
		{"other scoped key, openai shape", "/openai/v1/models", "Authorization", "Bearer ak-gemini", 403, "access_key_not_allowed", provider.StyleOpenAI},
		{"unknown key", "/openai/v1/models", "Authorization", "Bearer ak-guess", 403, "invalid_access_key", provider.StyleOpenAI},
		{"a key's prefix", "/openai/v1/models", "Authorization", "Bearer ak-tea", 403, "invalid_access_key", provider.StyleOpenAI},
		{"pass-through provider ignores access keys", "/openrouter/v1/models", "Authorization", "Bearer sk-or-own", 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.path, nil)
			r.Header.Set(tt.header, tt.key)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != 200 {
				if c := rec.Header().Get(HeaderError); c != tt.code {
					t.Errorf("X-Mesh-Error = %q, want %q", c, tt.code)
				}
				checkShape(t, decodeError(t, rec.Body), tt.style, tt.status, tt.code)
				select {
				case <-got:
					t.Error("the provider was called for a refused key")
				default:
				}
				return
			}
			seen := <-got
			if tt.path == "/openrouter/v1/models" {
				if seen.Get("Authorization") != "Bearer sk-or-own" {
					t.Errorf("pass-through key changed: %v", seen)
				}
				return
			}
			for _, slot := range []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key"} {
				if v := seen.Get(slot); v != "" && v != "Bearer sk-real-openai" && v != "sk-real-anthropic" && v != "sk-real-gemini" {
					t.Errorf("provider got %s %q", slot, v)
				}
			}
		})
	}
}

// TestBillingHeaders: OpenAI-Organization and OpenAI-Project choose what a
// key bills. With the mesh's key they are the operator's (or none), never
// the client's; with the client's own key they are the client's.
func TestBillingHeaders(t *testing.T) {
	checkLeaks(t)
	got := make(chan http.Header, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	reg := managedRegistry(t, up.URL)
	openai, _ := reg.Get("openai")
	openai.Organization, openai.Project = "org-operator", "proj_operator"
	bare := newProvider(t, "bare", up.URL, provider.StyleOpenAI, 1<<20) // managed, nothing configured
	bare.Managed, bare.APIKey = true, "sk-real-bare"
	router, _ := reg.Get("openrouter")
	reg = provider.NewRegistry(openai, bare, router)
	ingress := newHandler(t, Config{Providers: reg, Router: routeTo(Target{Route: "direct"}), AccessKeys: []AccessKey{{Key: "ak"}}})
	egress := newHandler(t, Config{Providers: reg, MetricsRoute: "relay", Relay: true})

	client := func(path, key string, more ...string) *http.Request {
		r := httptest.NewRequest("POST", path, nil)
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("OpenAI-Organization", "org-client")
		r.Header.Set("OpenAI-Project", "proj_client")
		for i := 0; i+1 < len(more); i += 2 {
			r.Header.Set(more[i], more[i+1])
		}
		return r
	}
	tunnelled := func(path string) *http.Request {
		r := client(path, "anything")
		return r.WithContext(tunnel.WithInjectKey(r.Context()))
	}
	tests := []struct {
		name      string
		h         *Handler
		req       *http.Request
		org, proj string
	}{
		{"managed: the operator's", ingress, client("/openai/v1/chat/completions", "ak"), "org-operator", "proj_operator"},
		{"managed, named in Connection: still the operator's", ingress,
			client("/openai/v1/chat/completions", "ak", "Connection", "OpenAI-Organization, OpenAI-Project"), "org-operator", "proj_operator"},
		{"managed, other spellings: removed too", ingress,
			client("/bare/v1/chat/completions", "ak", "OpenAI_Organization", "org-sneaky", "openai_project", "proj_sneaky"), "", ""},
		{"managed, none configured: none", ingress, client("/bare/v1/chat/completions", "ak"), "", ""},
		{"pass-through: the client's", ingress, client("/openrouter/v1/chat/completions", "sk-or-own"), "org-client", "proj_client"},
		{"egress injecting: its own", egress, tunnelled("/openai/v1/chat/completions"), "org-operator", "proj_operator"},
		{"egress injecting, none configured: none", egress, tunnelled("/bare/v1/chat/completions"), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, tt.req)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			seen := <-got
			if o, p := seen.Values("Openai-Organization"), seen.Values("Openai-Project"); !equalOrNone(o, tt.org) || !equalOrNone(p, tt.proj) {
				t.Errorf("provider got organization %q project %q, want %q %q", o, p, tt.org, tt.proj)
			}
			for k, v := range seen {
				all := strings.Join(v, ",")
				if strings.Contains(all, "sneaky") || tt.org != "org-client" && (strings.Contains(all, "org-client") || strings.Contains(all, "proj_client")) {
					t.Errorf("provider got the client's %s: %q", k, v)
				}
			}
		})
	}

	// Toward an egress, the ingress sends neither: the egress sets its own.
	sent := make(chan http.Header, 1)
	capture := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		sent <- r.Header.Clone()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	tunnelIngress := newHandler(t, Config{Providers: reg, AccessKeys: []AccessKey{{Key: "ak"}},
		Router: routeTo(Target{Transport: capture, Tunnel: true, Route: "egress", Egress: "e1"})})
	rec := httptest.NewRecorder()
	tunnelIngress.ServeHTTP(rec, client("/openai/v1/chat/completions", "ak"))
	if h := <-sent; rec.Code != 200 || h.Get("Openai-Organization") != "" || h.Get("Openai-Project") != "" || h.Get("Authorization") != "" {
		t.Errorf("status %d; the tunnel carried %v", rec.Code, h)
	}
}

func equalOrNone(vs []string, want string) bool {
	if want == "" {
		return len(vs) == 0
	}
	return len(vs) == 1 && vs[0] == want
}
