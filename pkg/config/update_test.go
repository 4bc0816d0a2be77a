package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/role"
)

// TestUpdate: a reload applies what may change at run time, reports each
// changed key by name, and keeps every key that needs a restart as it was.
func TestUpdate(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "openai.key")
	writeKey := func(k string) {
		if err := os.WriteFile(keyFile, []byte(k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKey("sk-first")
	const base = `
node: {name: hk-1, loc: HK, hint: apac}
http: {listen: "127.0.0.1:8080", max_in_flight: 100}
gossip: {bind: "127.0.0.1:7946", key: "MDEyMzQ1Njc4OWFiY2RlZg=="}
routing:
  rules: [{locs: [HK], hint: wnam}]
auth: {access_keys: [ak-1]}
providers:
  openai: {api_key_file: "KEYFILE"}
`
	load := func(text string) *Runtime {
		t.Helper()
		rt, err := Parse([]byte(strings.ReplaceAll(text, "KEYFILE", keyFile)), "node.yaml", role.Ingress, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	old := load(base)
	for _, tc := range []struct {
		name             string
		edit             func(string) string
		key              string // a new key file content, "" = unchanged
		applied, restart []string
	}{
		{name: "nothing", edit: func(s string) string { return s }},
		{name: "rules, keys and limits", edit: func(s string) string {
			s = strings.Replace(s, "hint: wnam", "hint: weur", 1)
			s = strings.Replace(s, "[ak-1]", "[ak-1, ak-2]", 1)
			s = strings.Replace(s, "max_in_flight: 100", "max_in_flight: 5, min_body_rate: 10", 1)
			return s + "log: {level: debug}\n"
		}, applied: []string{"auth.access_keys", "http.max_in_flight", "http.min_body_rate", "log.level", "routing.rules"}},
		{name: "provider fields and a new provider", edit: func(s string) string {
			return s + `  anthropic: {base_url: "https://claude.example"}
  groq: {base_url: "https://groq.example/openai", disabled: true}
`
		}, applied: []string{"providers.anthropic.base_url", "providers.groq"}},
		{name: "key file contents", edit: func(s string) string { return s }, key: "sk-second",
			applied: []string{"providers.openai.api_key"}},
		{name: "restart only", edit: func(s string) string {
			s = strings.Replace(s, "name: hk-1", "name: hk-2", 1)
			s = strings.Replace(s, "127.0.0.1:8080", "127.0.0.1:8090", 1)
			s = strings.Replace(s, "MDEyMzQ1Njc4OWFiY2RlZg==", "ZmVkY2JhOTg3NjU0MzIxMA==", 1)
			return s + "log: {format: json}\nreload: {watch: true}\n"
		}, restart: []string{"node.name", "http.listen", "gossip.key", "log.format", "reload.watch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeKey("sk-first")
			if tc.key != "" {
				writeKey(tc.key)
			}
			next := load(tc.edit(base))
			got, ch := old.Update(next)
			if !reflect.DeepEqual(ch.Applied, tc.applied) {
				t.Errorf("applied = %q, want %q", ch.Applied, tc.applied)
			}
			if !reflect.DeepEqual(ch.Restart, tc.restart) {
				t.Errorf("restart = %q, want %q", ch.Restart, tc.restart)
			}
			if ch.Empty() != (len(tc.applied)+len(tc.restart) == 0) {
				t.Errorf("Empty() = %v", ch.Empty())
			}
			// Restart-only keys keep the running values; the rest are next's.
			if got.Node != old.Node || got.HTTP.Listen != old.HTTP.Listen || got.Log.Format != old.Log.Format ||
				got.Gossip.Key != old.Gossip.Key || !reflect.DeepEqual(got.Keyring, old.Keyring) || got.Reload != old.Reload {
				t.Errorf("a restart-only key changed: %+v", got.Config)
			}
			if !reflect.DeepEqual(got.Routing, next.Routing) || !reflect.DeepEqual(got.Auth, next.Auth) ||
				!reflect.DeepEqual(got.Endpoints, next.Endpoints) || got.HTTP.MaxInFlight != next.HTTP.MaxInFlight {
				t.Errorf("a reloadable key was not taken: %+v", got.Config)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the merged config is invalid: %v", err)
			}
			if next.Node.Name != "hk-1" && next.Node.Name != "hk-2" {
				t.Errorf("Update changed next: %q", next.Node.Name)
			}
		})
	}
}

// TestRestartOnly: the keys a running node cannot change, by their dotted
// paths, subtrees included.
func TestRestartOnly(t *testing.T) {
	for key, want := range map[string]bool{
		"node.name": true, "tunnel.tls.cert": true, "gossip.join[0]": true, "http.listen": true,
		"admin.token": true, "log.format": true, "reload.interval": true,
		"http.max_in_flight": false, "routing.rules": false, "providers.openai.base_url": false,
		"auth.access_keys": false, "log.level": false, "upstream.header_timeout": false, "nodes": false,
	} {
		if got := RestartOnly(key); got != want {
			t.Errorf("RestartOnly(%q) = %v, want %v", key, got, want)
		}
	}
}
