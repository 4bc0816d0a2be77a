package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	tokenValue = "tok-SUPERSECRET-1"
	keyValue   = "c2VjcmV0LWtleS0xNmJ5dA==" // 16 bytes, base64
)

func secretConfig(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte("node: {hint: wnam}\ntunnel:\n  token: ${T}\ngossip:\n  key: ${K}\n"), "cfg.yaml", RoleEgress,
		env(map[string]string{"T": tokenValue, "K": keyValue}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tunnel.Token.Reveal() != tokenValue || c.Gossip.Key.Reveal() != keyValue {
		t.Fatalf("secrets not loaded: %q %q", c.Tunnel.Token.Reveal(), c.Gossip.Key.Reveal())
	}
	return c
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
			_, err := Parse([]byte(tt.yml), "cfg.yaml", RoleIngress, env(tt.vars))
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
