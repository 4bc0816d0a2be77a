package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llmesh/llmesh/pkg/role"
)

const (
	tokenValue = "tok-SUPERSECRET-1"
	keyValue   = "c2VjcmV0LWtleS0xNmJ5dA==" // 16 bytes, base64
)

func secretConfig(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte("node: {hint: wnam}\ntunnel:\n  token: ${T}\ngossip:\n  key: ${K}\n"), "cfg.yaml", role.Egress,
		env(map[string]string{"T": tokenValue, "K": keyValue}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tunnel.Token.Reveal() != tokenValue || c.Gossip.Key.Reveal() != keyValue {
		t.Fatalf("secrets not loaded: %q %q", c.Tunnel.Token.Reveal(), c.Gossip.Key.Reveal())
	}
	return &c.Config
}

func TestSecretNeverPrints(t *testing.T) {
	c := secretConfig(t)
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-8v"} {
		outputs["fmt "+verb+" config"] = fmt.Sprintf(verb, c)
		outputs["fmt "+verb+" value"] = fmt.Sprintf(verb, *c)
		outputs["fmt "+verb+" secret"] = fmt.Sprintf(verb, c.Tunnel.Token)
	}
	outputs["Sprint"] = fmt.Sprint(c.Tunnel.Token, c.Gossip)
	outputs["Sprintln"] = fmt.Sprintln(c.Tunnel)
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
	} {
		var buf bytes.Buffer
		log := slog.New(h.new(&buf))
		log.Info("config", "config", c, "tunnel", c.Tunnel, "token", c.Tunnel.Token, slog.Any("key", c.Gossip.Key))
		log.Info("group", slog.Group("g", "key", c.Gossip.Key))
		outputs["slog "+h.name] = buf.String()
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(js)
	ym, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs["yaml"] = string(ym)

	for name, out := range outputs {
		if strings.Contains(out, tokenValue) || strings.Contains(out, keyValue) {
			t.Errorf("%s shows a secret: %s", name, out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s does not say %s: %s", name, redacted, out)
		}
	}

	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if got := back["Tunnel"].(map[string]any)["Token"]; got != redacted {
		t.Errorf("JSON Tunnel.Token = %v", got)
	}
}

// TestRuntimeNeverPrints: the runtime adds decoded keys and the keys read
// from files; none of them prints either.
func TestRuntimeNeverPrints(t *testing.T) {
	const apiKey = "sk-FROM-FILE-9c1d"
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(apiKey), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := Parse([]byte("node: {hint: wnam}\ntunnel: {token: \"${T}\"}\ngossip: {key: \"${K}\"}\nproviders: {openai: {api_key_file: "+keyFile+"}}\n"),
		"cfg.yaml", role.Egress, env(map[string]string{"T": tokenValue, "K": keyValue}))
	if err != nil {
		t.Fatal(err)
	}
	decodedKey, _ := base64.StdEncoding.DecodeString(keyValue)
	if len(rt.Keyring) != 1 || rt.Endpoints["openai"].APIKey.Reveal() != apiKey {
		t.Fatalf("runtime secrets not loaded")
	}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, rt), fmt.Sprintf(verb, *rt), fmt.Sprintf(verb, rt.Keyring), fmt.Sprintf(verb, rt.Endpoints))
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("runtime", "rt", rt, "ring", rt.Keyring, "endpoints", rt.Endpoints)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("runtime", "rt", rt, "ring", rt.Keyring)
	js, err := json.Marshal(rt)
	if err != nil {
		t.Fatal(err)
	}
	ym, err := yaml.Marshal(rt)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, buf.String(), string(js), string(ym))
	for _, out := range outputs {
		for _, secret := range []string{tokenValue, keyValue, apiKey, string(decodedKey), fmt.Sprintf("%x", decodedKey), fmt.Sprintf("%X", decodedKey), fmt.Sprint(decodedKey)} {
			if strings.Contains(out, secret) {
				t.Errorf("output shows a secret: %s", out)
			}
		}
	}
}

func TestEmptySecret(t *testing.T) {
	var s Secret
	js, _ := json.Marshal(s)
	txt, _ := s.MarshalText()
	for name, got := range map[string]string{
		"String": s.String(), "GoString": s.GoString(), "%v": fmt.Sprintf("%v", s), "%#v": fmt.Sprintf("%#v", s),
		"LogValue": s.LogValue().String(), "MarshalText": string(txt), "Reveal": s.Reveal(),
	} {
		if got != "" {
			t.Errorf("%s = %q, want empty", name, got)
		}
	}
	if string(js) != `""` {
		t.Errorf("MarshalJSON = %s", js)
	}
	if got := fmt.Sprintf("%q", s); got != `""` {
		t.Errorf("%%q = %s", got)
	}
}

func TestSecretMethods(t *testing.T) {
	s := Secret("hunter2")
	js, _ := s.MarshalJSON()
	txt, _ := s.MarshalText()
	for name, got := range map[string]string{
		"String": s.String(), "GoString": s.GoString(), "LogValue": s.LogValue().String(),
		"MarshalJSON": string(js), "MarshalText": string(txt),
	} {
		if want := redacted; name == "MarshalJSON" && got != `"`+want+`"` || name != "MarshalJSON" && got != want {
			t.Errorf("%s = %q", name, got)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}

// Errors about secret values say what is wrong, never what the value is.
func TestSecretNotInErrors(t *testing.T) {
	const bad = "bad key value!"
	tests := []struct {
		name string
		yml  string
		vars map[string]string
	}{
		{"bad base64 key", "gossip:\n  key: ${K}\n", map[string]string{"K": bad}},
		{"short key", "gossip:\n  key: ${K}\n", map[string]string{"K": "YmFkIGtleSB2YWx1ZSE="}}, // base64 of bad
		{"token with spaces", "tunnel:\n  token: ${K}\n", map[string]string{"K": bad}},
		{"token with odd reference", "tunnel:\n  token: \"bad key ${value!}\"\n", nil},
		{"token as a list", "tunnel:\n  token: [\"bad key value!\"]\n", nil},
		{"key as a mapping", "gossip:\n  key: {bad key value!: 1}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yml), "cfg.yaml", role.Ingress, env(tt.vars))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, leak := range []string{"bad key", "value!", "YmFk"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error shows the secret: %v", err)
				}
			}
		})
	}
}

func TestKeyBytes(t *testing.T) {
	tests := []struct {
		key     Secret
		wantLen int
		wantErr bool
	}{
		{"", 0, false},
		{"MDEyMzQ1Njc4OWFiY2RlZg==", 16, false},
		{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3", 24, false},
		{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", 32, false},
		{" MDEyMzQ1Njc4OWFiY2RlZg==\n", 16, false},
		{"MDEyMzQ1Njc4OWFiY2RlZjA=", 0, true}, // 17 bytes
		{"%%%", 0, true},
	}
	for _, tt := range tests {
		b, err := Gossip{Key: tt.key}.KeyBytes()
		if (err != nil) != tt.wantErr || len(b) != tt.wantLen {
			t.Errorf("KeyBytes(%q) = %d bytes, %v", tt.key.Reveal(), len(b), err)
		}
		if tt.key == "" && b != nil {
			t.Errorf("KeyBytes of an unset key = %v, want nil", b)
		}
	}
}

// secretPaths are where a secret may be written, and the sections holding
// them: a value written in the wrong shape at any of them must never be
// quoted back. "[0]" stands for a list element.
var secretPaths = []string{
	"", // the whole file
	"tunnel", "tunnel.token",
	"gossip", "gossip.key", "gossip.keys", "gossip.keys[0]",
	"auth", "auth.access_keys", "auth.access_keys[0]", "auth.access_keys[0].key",
	"admin", "admin.token",
	"providers", "providers.openai", "providers.openai.api_key", "providers.custom.api_key",
}

// keyedSections own a secret: one may be written there where a key goes.
// (Elsewhere keys are names: the file's sections, provider names.)
var keyedSections = []string{"tunnel", "gossip", "auth", "auth.access_keys[0]", "admin", "providers.openai", "providers.custom"}

// nest writes value at path in YAML flow style.
func nest(path, value string) string {
	if path == "" {
		return value
	}
	head, rest, _ := strings.Cut(path, ".")
	if name, ok := strings.CutSuffix(head, "[0]"); ok {
		return "{" + name + ": [" + nest(rest, value) + "]}"
	}
	return "{" + head + ": " + nest(rest, value) + "}"
}

// TestSecretShapesNotInErrors: every secret key, and every section holding
// one, given a secret in a shape it does not take (a list where a string
// goes, a string where a list or mapping goes, the secret as a key...).
func TestSecretShapesNotInErrors(t *testing.T) {
	const leak = "sk-LEAK-7f3a"
	values := []string{
		leak, `"` + leak + `"`, "'" + leak + "'", "!!binary " + leak, "&a " + leak, "!!int " + leak,
		"[" + leak + "]", "[[" + leak + "]]", "[{" + leak + "}]", "[{" + leak + ": [openai]}]",
		"[{key: [" + leak + "]}]", "[{key: {" + leak + ": 1}}]", "{x: " + leak + "}", "{x: [" + leak + "]}",
		"secretvalue", "[secretvalue]", "[{secretvalue: [openai]}]",
	}
	keys := []string{
		"{" + leak + "}", "{" + leak + ": 1}", "{" + leak + ": x, " + leak + ": y}", "{key: {" + leak + ": 1}}",
		"{key: [" + leak + "]}", "{" + strings.ToLower(leak) + "}", "{secretvalue}", "{secretvalue: [openai]}",
	}
	check := func(r role.Role, yml string) {
		t.Helper()
		_, err := Parse([]byte(yml), "cfg.yaml", r, nil)
		if err == nil {
			return
		}
		for _, bad := range []string{"LEAK", "leak", "secretvalue"} {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("%s %s: error shows the secret: %v", r, yml, err)
			}
		}
	}
	for _, r := range []role.Role{role.Ingress, role.Egress} {
		for _, path := range secretPaths {
			for _, v := range values {
				check(r, nest(path, v))
			}
		}
		for _, path := range keyedSections {
			for _, k := range keys {
				check(r, nest(path, k))
			}
		}
	}
	// The case from the issue, and others in block style.
	for _, yml := range []string{
		"auth:\n  access_keys: team-a-secret\n",
		"gossip:\n  keys: team-a-secret\n",
		"auth:\n  access_keys:\n    - team-a-secret: [openai]\n",
		"auth: team-a-secret\n",
		"tunnel:\n  team-a-secret:\n",
	} {
		_, err := Parse([]byte(yml), "cfg.yaml", role.Ingress, nil)
		if err == nil || strings.Contains(err.Error(), "team-a-secret") {
			t.Errorf("%q: error %v", yml, err)
		}
	}
}
