package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/role"
)

func TestEnvExpansion(t *testing.T) {
	vars := map[string]string{
		"TOKEN":  "tok-1",
		"HOST":   "127.0.0.2",
		"PORT":   "9000",
		"TRUE":   "true",
		"N":      "64",
		"EMPTY":  "",
		"NESTED": "${TOKEN}",
		"LABEL":  "prod",
	}
	tests := []struct {
		name  string
		yml   string
		role  role.Role
		check func(*Config) bool
	}{
		{"whole value", "tunnel:\n  token: ${TOKEN}\n", role.Ingress,
			func(c *Config) bool { return c.Tunnel.Token.Reveal() == "tok-1" }},
		{"several in one value", "http: {listen: \"${HOST}:${PORT}\"}", role.Ingress,
			func(c *Config) bool { return c.HTTP.Listen == "127.0.0.2:9000" }},
		{"inside text", "gossip:\n  label: llmesh-${LABEL}-eu\n", role.Ingress,
			func(c *Config) bool { return c.Gossip.Label == "llmesh-prod-eu" }},
		{"bool from plain scalar", "node: {hint: wnam}\ntunnel:\n  insecure: ${TRUE}\n", role.Egress,
			func(c *Config) bool { return c.Tunnel.Insecure }},
		{"int from plain scalar", "node: {hint: wnam}\ntunnel:\n  insecure: true\n  max_streams: ${N}\n", role.Egress,
			func(c *Config) bool { return c.Tunnel.MaxStreams == 64 }},
		{"in a list", "gossip: {join: [\"${HOST}:7946\", x.example:1]}", role.Ingress,
			func(c *Config) bool { return c.Gossip.Join[0] == "127.0.0.2:7946" && c.Gossip.Join[1] == "x.example:1" }},
		{"set but empty", "tunnel:\n  advertise: ${EMPTY}\n  token: ${EMPTY}\n", role.Ingress,
			func(c *Config) bool { return c.Tunnel.Token == "" }},
		{"value not expanded again", "gossip:\n  label: ${NESTED}\n", role.Ingress,
			func(c *Config) bool { return c.Gossip.Label == "${TOKEN}" }},
		{"other dollars untouched", `gossip: {label: "$$a$HOME$ {x}$"}`, role.Ingress,
			func(c *Config) bool { return c.Gossip.Label == "$$a$HOME$ {x}$" }},
		{"unclosed brace untouched", `gossip: {label: "a${b"}`, role.Ingress,
			func(c *Config) bool { return c.Gossip.Label == "a${b" }},
		{"comments not expanded", "node: {colo: x1} # ${UNSET}", role.Ingress,
			func(c *Config) bool { return c.Node.Colo == "X1" }},
		{"alias expanded once", "tunnel: {token: &t \"${NESTED}\"}\ngossip: {label: *t}", role.Ingress,
			func(c *Config) bool { return c.Tunnel.Token.Reveal() == "${TOKEN}" && c.Gossip.Label == "${TOKEN}" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yml), "cfg.yaml", tt.role, env(vars))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.yml, err)
			}
			if !tt.check(&c.Config) {
				t.Errorf("Parse(%q) = %+v", tt.yml, c)
			}
		})
	}
}

func TestEnvExpansionErrors(t *testing.T) {
	vars := map[string]string{"WORD": "maybe", "PORT": "80"}
	tests := []struct {
		name string
		yml  string
		want []string // each line of the error, in order
	}{
		{"unset", "node:\n  name: a\ntunnel:\n  token: ${LLMESH_TUNNEL_TOKEN}\n", []string{
			"node.yaml:4: tunnel.token: environment variable LLMESH_TUNNEL_TOKEN is not set"}},
		{"every unset one", "http: {listen: \"${A}:${PORT}:${B}\"}\ngossip:\n  join: [\"${C}\"]\n", []string{
			"node.yaml:1: http.listen: environment variable A is not set",
			"node.yaml:1: http.listen: environment variable B is not set",
			"node.yaml:3: gossip.join[0]: environment variable C is not set"}},
		{"bool that is not", "tunnel:\n  insecure: ${WORD}\n", []string{
			`node.yaml:2: tunnel.insecure: must be true or false (got a value from the environment)`}},
		{"quoted stays a string", `tunnel: {insecure: "${WORD}"}`, []string{
			`node.yaml:1: tunnel.insecure: must be true or false (got a value from the environment)`}},
		{"unsupported form", "gossip: {label: \"${WORD:-x}\"}", []string{
			"node.yaml:1: gossip.label: unsupported reference ${WORD:-x}; only ${NAME} is expanded"}},
		{"unsupported form in a secret", "tunnel: {token: \"${pass word}\"}", []string{
			"node.yaml:1: tunnel.token: unsupported ${...} reference; only ${NAME} is expanded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yml), "node.yaml", role.Ingress, env(vars))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.yml)
			}
			if got := err.Error(); got != strings.Join(tt.want, "\n") {
				t.Errorf("error =\n%s\nwant\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSchemaErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want string
	}{
		{"unknown top-level key", "node: {}\nrole: egress\n",
			"cfg.yaml:2: role: unknown key; known keys are node, http, tunnel, gossip, routing, upstream, providers, auth, admin, log, reload, drain_timeout"},
		{"unknown nested key", "tunnel:\n  tokn: x\n",
			"cfg.yaml:2: tunnel.tokn: unknown key; known keys are listen, advertise, token, tls, insecure, max_streams, keepalive, keepalive_timeout, handshake_timeout, max_handshakes, accept_timeout"},
		{"unknown key in a rule", "routing:\n  rules:\n    - locs: [HK]\n      hint: wnam\n      via: x\n",
			"cfg.yaml:5: routing.rules[0].via: unknown key; known keys are locs, hint"},
		{"misspelt key in a provider", "providers:\n  openai: {base_ur: x}\n",
			"cfg.yaml:2: providers.openai.base_ur: unknown key; known keys are base_url, style, max_body_bytes, api_key, api_key_file, managed_key, organization, project, disabled"},
		// A provider holds a secret: a key that is not a typo of one of its
		// own may be a secret in the wrong place, and is not repeated.
		{"unknown key in a provider", "providers:\n  openai: {url: x}\n",
			"cfg.yaml:2: providers.openai: unknown key (not repeated: here it could be a secret); known keys are base_url, style, max_body_bytes, api_key, api_key_file, managed_key, organization, project, disabled"},
		{"secret where a key goes", "auth:\n  access_keys:\n    - team-a-secret: [openai]\n",
			"cfg.yaml:3: auth.access_keys[0]: unknown key (not repeated: here it could be a secret); known keys are key, providers"},
		{"secret list not a list", "gossip: {keys: c2VjcmV0}",
			"cfg.yaml:1: gossip.keys: must be a list (got a string)"},
		{"access keys not a list", "auth: {access_keys: team-a-secret}",
			"cfg.yaml:1: auth.access_keys: must be a list (got a string)"},
		{"duplicate key", "node:\n  name: a\n  name: b\n",
			"cfg.yaml:3: node.name: duplicate key (first at line 2)"},
		{"integer", "http:\n  max_body_bytes: big\n",
			`cfg.yaml:2: http.max_body_bytes: must be an integer (got "big")`},
		{"unsigned", "tunnel: {max_streams: -1}",
			`cfg.yaml:1: tunnel.max_streams: must be an integer from 0 to 4294967295 (got "-1")`},
		{"duration without unit", "drain_timeout: 30",
			`cfg.yaml:1: drain_timeout: must be a duration such as 30s or 10m (got "30")`},
		{"bad duration", "upstream: {header_timeout: soon}",
			`cfg.yaml:1: upstream.header_timeout: must be a duration such as 30s or 10m (got "soon")`},
		{"section not a mapping", "http: 8080",
			`cfg.yaml:1: http: must be a mapping (got "8080")`},
		{"list not a list", "gossip: {join: 127.0.0.1:7946}",
			`cfg.yaml:1: gossip.join: must be a list (got "127.0.0.1:7946")`},
		{"string given a mapping", "node: {name: {first: a}}",
			`cfg.yaml:1: node.name: must be a string (got a mapping)`},
		{"secret given a list", "gossip: {key: [c2VjcmV0]}",
			`cfg.yaml:1: gossip.key: must be a string (got a list)`},
		{"file not a mapping", "- a\n- b\n",
			`cfg.yaml:1: must be a mapping (got a list)`},
		{"syntax error", "node:\n  name: a\n b: c\n",
			`cfg.yaml:2: did not find expected key`},
		{"unquoted reference in flow style", "tunnel: {token: ${T}}",
			`cfg.yaml: did not find expected ',' or '}' (quote a ${NAME} value inside {...} or [...]: "${NAME}")`},
		{"merge of a scalar", "providers:\n  c:\n    <<: 5\n",
			"cfg.yaml:3: providers.c: << must name a mapping or a list of mappings"},
		{"non-scalar key", "node: {[a]: b}",
			"cfg.yaml:1: node: keys must be plain strings"},
		{"self-referring alias", "providers: &p {a: *p}",
			"cfg.yaml:1: providers.a: unknown key (not repeated: here it could be a secret); known keys are base_url, style, max_body_bytes, api_key, api_key_file, managed_key, organization, project, disabled"},
		{"env name with a leading digit", `gossip: {label: "${1A}"}`,
			"cfg.yaml:1: gossip.label: unsupported reference ${1A}; only ${NAME} is expanded"},
		{"two documents", "node: {}\n---\nhttp: {}\n",
			`cfg.yaml:2: more than one YAML document`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yml, role.Ingress)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.yml)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", got, tt.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.File != "cfg.yaml" {
				t.Errorf("error %v is not a *FieldError for cfg.yaml", err)
			}
		})
	}
}
