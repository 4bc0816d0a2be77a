package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/role"
)

// env returns a lookupEnv over a fixed map.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func parse(t *testing.T, yml string, r role.Role) (*Config, error) {
	t.Helper()
	rt, err := Parse([]byte(yml), "cfg.yaml", r, env(nil))
	if err != nil {
		return nil, err
	}
	return &rt.Config, nil
}

func mustParse(t *testing.T, yml string, r role.Role) *Config {
	t.Helper()
	c, err := parse(t, yml, r)
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror: %v", yml, err)
	}
	return c
}

func TestDefault(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no hostname")
	}
	tests := []struct {
		role                                 role.Role
		httpListen, tunnelListen, gossipBind string
	}{
		{role.Ingress, "127.0.0.1:8080", "", "127.0.0.1:7946"},
		{role.Egress, "127.0.0.1:8081", "127.0.0.1:9443", "127.0.0.1:7947"},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			c := Default(tt.role)
			if c.Role != tt.role || c.File != "" {
				t.Errorf("Role, File = %q, %q", c.Role, c.File)
			}
			if want := host + "-" + string(tt.role); c.Node.Name != want {
				t.Errorf("Node.Name = %q, want %q", c.Node.Name, want)
			}
			if c.HTTP.Listen != tt.httpListen || c.Tunnel.Listen != tt.tunnelListen || c.Gossip.Bind != tt.gossipBind {
				t.Errorf("listen addresses = %q %q %q", c.HTTP.Listen, c.Tunnel.Listen, c.Gossip.Bind)
			}
			want := HTTP{Listen: tt.httpListen, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
				MaxHeaderBytes: 64 << 10, MaxBodyBytes: 33554432, MaxInFlight: 4096,
				BodyIdleTimeout: 30 * time.Second, MinBodyRate: 4096, MaxStreamsPerConn: 100}
			if c.HTTP != want {
				t.Errorf("HTTP = %+v, want %+v", c.HTTP, want)
			}
			if c.Tunnel.MaxStreams != 1000 || c.Gossip.Profile != "wan" || c.Gossip.RejoinInterval != 30*time.Second ||
				c.Routing.Fallback != "fail" || c.Routing.RetryBodyBudget != 64<<20 || c.Upstream.DialTimeout != 10*time.Second ||
				c.Upstream.HeaderTimeout != 10*time.Minute || c.Log != (Log{"info", "text"}) ||
				c.DrainTimeout != 30*time.Second {
				t.Errorf("defaults = %+v", c)
			}
			if !reflect.DeepEqual(c.Providers, BuiltinProviders()) {
				t.Errorf("Providers = %v", c.Providers)
			}
		})
	}

	c := Default(role.Ingress)
	if err := c.Validate(); err != nil {
		t.Fatalf("Default(ingress).Validate: %v", err)
	}
	if got := c.Providers["openai"].MaxBodyBytes; got != 32<<20 {
		t.Errorf("provider limit after Validate = %d", got)
	}
	err = Default(role.Egress).Validate()
	for _, want := range []string{"defaults: node.hint: required", "defaults: tunnel: an egress needs"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Default(egress).Validate() = %v, want %q", err, want)
		}
	}
}

func TestBuiltinProviders(t *testing.T) {
	want := map[string]Provider{
		"openai":     {BaseURL: "https://api.openai.com", Style: "openai"},
		"anthropic":  {BaseURL: "https://api.anthropic.com", Style: "anthropic"},
		"openrouter": {BaseURL: "https://openrouter.ai/api", Style: "openai"},
		"gemini":     {BaseURL: "https://generativelanguage.googleapis.com", Style: "gemini"},
	}
	p := BuiltinProviders()
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("BuiltinProviders() = %v", p)
	}
	p["openai"] = Provider{}
	if BuiltinProviders()["openai"].BaseURL == "" {
		t.Fatal("BuiltinProviders shares its map")
	}
}

func TestLoad(t *testing.T) {
	c, err := Load("", role.Ingress)
	if err != nil || c.File != "" || c.Providers["gemini"].MaxBodyBytes != 32<<20 {
		t.Fatalf("Load(\"\") = %+v, %v", c, err)
	}
	if _, err := Load("", role.Egress); err == nil {
		t.Fatal("Load(\"\", egress) accepted an egress without hint or tunnel security")
	}

	path := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(path, []byte("node:\n  loc: hk\ntunnel:\n  token: ${LLMESH_TEST_TOKEN}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LLMESH_TEST_TOKEN", "s3cret-token")
	c, err = Load(path, role.Ingress)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || c.Node.Loc != "HK" || c.Tunnel.Token.Reveal() != "s3cret-token" {
		t.Errorf("Load = %+v", c)
	}

	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), role.Ingress); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}

func TestDesignExample(t *testing.T) {
	data, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []role.Role{role.Ingress, role.Egress} {
		t.Run(string(r), func(t *testing.T) {
			c, err := Parse(data, "design.yaml", r, env(map[string]string{"LLMESH_TUNNEL_TOKEN": "tok-123"}))
			if err != nil {
				t.Fatal(err)
			}
			want := Default(r)
			want.File = "design.yaml"
			want.Node = Node{Name: "hk-1", Loc: "HK", Colo: "HKG", Hint: "apac"}
			want.HTTP.Listen = "127.0.0.1:8080"
			want.Tunnel.Listen = "127.0.0.1:9443"
			want.Tunnel.Advertise = "127.0.0.1:9443"
			want.Tunnel.Token = "tok-123"
			want.Gossip.Bind = "127.0.0.1:7946"
			want.Gossip.Join = []string{"127.0.0.1:7947"}
			want.Routing.Rules = []Rule{{Locs: []string{"HK", "CN"}, Hint: "wnam"}}
			for name, p := range want.Providers {
				p.MaxBodyBytes = 32 << 20
				want.Providers[name] = p
			}
			if !reflect.DeepEqual(&c.Config, want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", c, want)
			}
		})
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		yml  string
		get  func(*Config) time.Duration
		want time.Duration
	}{
		{"drain_timeout: 45s", func(c *Config) time.Duration { return c.DrainTimeout }, 45 * time.Second},
		{"drain_timeout: 0s", func(c *Config) time.Duration { return c.DrainTimeout }, 0},
		{"http: {read_header_timeout: 1m30s}", func(c *Config) time.Duration { return c.HTTP.ReadHeaderTimeout }, 90 * time.Second},
		{"http: {idle_timeout: 500ms}", func(c *Config) time.Duration { return c.HTTP.IdleTimeout }, 500 * time.Millisecond},
		{"upstream: {dial_timeout: 3s}", func(c *Config) time.Duration { return c.Upstream.DialTimeout }, 3 * time.Second},
		{"upstream: {header_timeout: 1h}", func(c *Config) time.Duration { return c.Upstream.HeaderTimeout }, time.Hour},
		{"tunnel: {keepalive: 20s}", func(c *Config) time.Duration { return c.Tunnel.Keepalive }, 20 * time.Second},
		{"tunnel: {keepalive_timeout: 3s}", func(c *Config) time.Duration { return c.Tunnel.KeepaliveTimeout }, 3 * time.Second},
		{"tunnel: {handshake_timeout: 5s}", func(c *Config) time.Duration { return c.Tunnel.HandshakeTimeout }, 5 * time.Second},
		{"tunnel: {accept_timeout: 2s}", func(c *Config) time.Duration { return c.Tunnel.AcceptTimeout }, 2 * time.Second},
		{"tunnel: {accept_timeout: 0s}", func(c *Config) time.Duration { return c.Tunnel.AcceptTimeout }, 0},
		{"tunnel: {}", func(c *Config) time.Duration { return c.Tunnel.AcceptTimeout }, time.Second},
		{"gossip: {rejoin_interval: \"2m\"}", func(c *Config) time.Duration { return c.Gossip.RejoinInterval }, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.yml, func(t *testing.T) {
			if got := tt.get(mustParse(t, tt.yml, role.Ingress)); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProviderMerge(t *testing.T) {
	c := mustParse(t, `
http: {max_body_bytes: 1000}
providers:
  openai: {base_url: "http://127.0.0.1:9/"}
  anthropic: {max_body_bytes: 50}
  gemini: {}
  openrouter:
  local: {base_url: "http://127.0.0.1:11434/v1/"}
  claude-proxy: {base_url: "https://proxy.example/anthropic", style: anthropic}
`, role.Ingress)
	want := map[string]Provider{
		"openai":       {BaseURL: "http://127.0.0.1:9", Style: "openai", MaxBodyBytes: 1000},
		"anthropic":    {BaseURL: "https://api.anthropic.com", Style: "anthropic", MaxBodyBytes: 50},
		"openrouter":   {BaseURL: "https://openrouter.ai/api", Style: "openai", MaxBodyBytes: 1000},
		"gemini":       {BaseURL: "https://generativelanguage.googleapis.com", Style: "gemini", MaxBodyBytes: 1000},
		"local":        {BaseURL: "http://127.0.0.1:11434/v1", Style: "openai", MaxBodyBytes: 1000},
		"claude-proxy": {BaseURL: "https://proxy.example/anthropic", Style: "anthropic", MaxBodyBytes: 1000},
	}
	if !reflect.DeepEqual(c.Providers, want) {
		t.Errorf("Providers =\n%v\nwant\n%v", c.Providers, want)
	}

	// "providers:" with nothing under it keeps the built-ins.
	if c := mustParse(t, "providers:\n", role.Ingress); len(c.Providers) != 4 {
		t.Errorf("providers: null gave %v", c.Providers)
	}
	// A new provider with no base_url is an error, not a silent empty route.
	if _, err := parse(t, "providers: {mine: {}}", role.Ingress); err == nil ||
		!strings.Contains(err.Error(), "cfg.yaml: providers.mine.base_url: required") {
		t.Errorf("provider without base_url: %v", err)
	}
}

func TestEmptyAndOddFiles(t *testing.T) {
	for _, yml := range []string{"", "# only a comment\n", "---\n", "~\n", "node:\nhttp:\n"} {
		c, err := parse(t, yml, role.Ingress)
		if err != nil {
			t.Errorf("Parse(%q): %v", yml, err)
			continue
		}
		if c.HTTP.Listen != "127.0.0.1:8080" || len(c.Providers) != 4 {
			t.Errorf("Parse(%q) lost defaults: %+v", yml, c)
		}
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	c := mustParse(t, `
providers:
  a: &p {base_url: "https://a.example", style: anthropic, max_body_bytes: 7}
  b:
    <<: *p
    base_url: https://b.example
  c: *p
`, role.Ingress)
	want := map[string]Provider{
		"a": {BaseURL: "https://a.example", Style: "anthropic", MaxBodyBytes: 7},
		"b": {BaseURL: "https://b.example", Style: "anthropic", MaxBodyBytes: 7},
		"c": {BaseURL: "https://a.example", Style: "anthropic", MaxBodyBytes: 7},
	}
	for name, p := range want {
		if c.Providers[name] != p {
			t.Errorf("providers.%s = %+v, want %+v", name, c.Providers[name], p)
		}
	}
	_, err := parse(t, "providers:\n  a: &p {base_url: https://a.example}\n  b:\n    <<: *p\n    bogus: 1\n", role.Ingress)
	if err == nil || err.Error() != "cfg.yaml:5: providers.b: unknown key (not repeated: here it could be a secret); known keys are base_url, style, max_body_bytes, api_key, api_key_file, managed_key, organization, project, disabled" {
		t.Errorf("unknown key beside a merge: %v", err)
	}
	_, err = parse(t, "node: &n\n  name: x\n  colour: red\nhttp: *n\n", role.Ingress)
	if err == nil || !strings.Contains(err.Error(), "cfg.yaml:3: node.colour: unknown key") ||
		!strings.Contains(err.Error(), "cfg.yaml:2: http.name: unknown key") {
		t.Errorf("alias checked against its new place: %v", err)
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR", "DEBUG": "DEBUG"} {
		c := mustParse(t, "log: {level: "+level+"}", role.Ingress)
		if got := c.SlogLevel().String(); got != want {
			t.Errorf("level %s: SlogLevel() = %s, want %s", level, got, want)
		}
	}
}

func TestNormalise(t *testing.T) {
	c := mustParse(t, `
node: {loc: hk, colo: hkg, hint: APAC}
routing: {rules: [{locs: [cn, Mo], hint: WNAM}], fallback: Direct}
log: {level: DEBUG, format: JSON}
`, role.Ingress)
	if c.Node != (Node{Name: c.Node.Name, Loc: "HK", Colo: "HKG", Hint: "apac"}) {
		t.Errorf("Node = %+v", c.Node)
	}
	if r := c.Routing; !reflect.DeepEqual(r.Rules, []Rule{{Locs: []string{"CN", "MO"}, Hint: "wnam"}}) || r.Fallback != "direct" {
		t.Errorf("Routing = %+v", r)
	}
	if c.Log != (Log{"debug", "json"}) {
		t.Errorf("Log = %+v", c.Log)
	}
	// The Norway problem: NO stays a country code in a string field.
	if c := mustParse(t, "node: {loc: NO}\nrouting: {rules: [{locs: [NO, no], hint: weur}]}", role.Ingress); c.Node.Loc != "NO" {
		t.Errorf("loc NO = %q", c.Node.Loc)
	}
}
