package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/role"
)

// tlsFiles writes three empty files and returns their paths.
func tlsFiles(t *testing.T) (cert, key, ca string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"cert.pem", "key.pem", "ca.pem"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
}

// errorLines splits a joined error into its lines.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		role role.Role
		want string // one line of the error
	}{
		{"loc", "node: {loc: HKG}", role.Ingress,
			`cfg.yaml: node.loc: must be an ISO 3166 alpha-2 code such as HK or US (got "HKG")`},
		{"loc letters", "node: {loc: \"1A\"}", role.Ingress,
			`cfg.yaml: node.loc: must be an ISO 3166 alpha-2 code such as HK or US (got "1A")`},
		{"colo", "node: {colo: \"HK G\"}", role.Ingress,
			`cfg.yaml: node.colo: must be up to 32 letters, digits or '-' such as HKG (got "HK G")`},
		{"name", "node: {name: \"a b\"}", role.Ingress,
			`cfg.yaml: node.name: must not contain spaces or control characters (got "a b")`},
		{"hint", "node: {hint: asia}", role.Ingress,
			`cfg.yaml: node.hint: must be one of wnam, enam, weur, eeur, apac, oc, afr, sam, me (got "asia")`},
		{"egress needs a hint", "tunnel: {insecure: true}", role.Egress,
			`cfg.yaml: node.hint: required on an egress: ingress nodes pick an egress by its hint (one of wnam, enam, weur, eeur, apac, oc, afr, sam, me)`},
		{"http.listen", "http: {listen: \"8080\"}", role.Ingress,
			`cfg.yaml: http.listen: must be host:port (got "8080")`},
		{"http.listen port", "http: {listen: \"127.0.0.1:80800\"}", role.Ingress,
			`cfg.yaml: http.listen: port must be a number from 0 to 65535 (got "127.0.0.1:80800")`},
		{"http.listen named port", "http: {listen: \"127.0.0.1:http\"}", role.Ingress,
			`cfg.yaml: http.listen: port must be a number from 0 to 65535 (got "127.0.0.1:http")`},
		{"http.listen empty", "http: {listen: \"\"}", role.Ingress,
			`cfg.yaml: http.listen: required (host:port)`},
		{"negative body", "http: {max_body_bytes: -1}", role.Ingress,
			`cfg.yaml: http.max_body_bytes: must not be negative (got -1)`},
		{"negative header bytes", "http: {max_header_bytes: -1}", role.Ingress,
			`cfg.yaml: http.max_header_bytes: must not be negative (got -1)`},
		{"negative timeout", "http: {read_header_timeout: -1s}", role.Ingress,
			`cfg.yaml: http.read_header_timeout: must not be negative (got -1s)`},
		{"negative idle", "http: {idle_timeout: -1s}", role.Ingress,
			`cfg.yaml: http.idle_timeout: must not be negative (got -1s)`},
		{"negative body idle", "http: {body_idle_timeout: -1s}", role.Ingress,
			`cfg.yaml: http.body_idle_timeout: must not be negative (got -1s)`},
		{"negative body rate", "http: {min_body_rate: -1}", role.Ingress,
			`cfg.yaml: http.min_body_rate: must not be negative (got -1)`},
		{"body rate without grace", "http: {body_idle_timeout: 0s}", role.Ingress,
			`cfg.yaml: http.min_body_rate: needs http.body_idle_timeout, its grace period (set both, or min_body_rate: 0)`},
		{"negative streams per conn", "http: {max_streams_per_conn: -1}", role.Ingress,
			`cfg.yaml: http.max_streams_per_conn: must not be negative (got -1)`},
		{"negative per-client cap", "http: {max_in_flight_per_client: -1}", role.Ingress,
			`cfg.yaml: http.max_in_flight_per_client: must not be negative (got -1)`},
		{"negative replay budget", "routing: {retry_body_budget: -1}", role.Ingress,
			`cfg.yaml: routing.retry_body_budget: must not be negative (got -1)`},
		{"negative replay size", "routing: {retry_body_bytes: -1}", role.Ingress,
			`cfg.yaml: routing.retry_body_bytes: must not be negative (got -1)`},
		{"region block hint", "routing: {on_region_block: mars}", role.Ingress,
			`cfg.yaml: routing.on_region_block: must be one of wnam, enam, weur, eeur, apac, oc, afr, sam, me (got "mars")`},
		{"negative region block ttl", "routing: {region_block_ttl: -1s}", role.Ingress,
			`cfg.yaml: routing.region_block_ttl: must not be negative (got -1s)`},
		{"negative in-flight cap", "http: {max_in_flight: -1}", role.Ingress,
			`cfg.yaml: http.max_in_flight: must not be negative (got -1)`},
		{"negative sse keepalive", "http: {sse_keepalive: -1s}", role.Ingress,
			`cfg.yaml: http.sse_keepalive: must not be negative (got -1s)`},
		{"admin.listen", "admin: {listen: nowhere}", role.Ingress,
			`cfg.yaml: admin.listen: must be host:port (got "nowhere")`},
		{"admin.token", "admin: {token: \"two words\"}", role.Ingress,
			`cfg.yaml: admin.token: must be printable ASCII without spaces`},
		{"api_key and api_key_file", "auth: {access_keys: [ak-1]}\nproviders: {openai: {api_key: sk-1, api_key_file: /k}}", role.Ingress,
			`cfg.yaml: providers.openai: set api_key or api_key_file, not both`},
		{"keepalive too often", "tunnel: {keepalive: 1s}", role.Ingress,
			`cfg.yaml: tunnel.keepalive: must be at least 10s (got 1s)`},
		{"keepalive timeout zero", "tunnel: {keepalive_timeout: 0s}", role.Ingress,
			`cfg.yaml: tunnel.keepalive_timeout: must be at least 1s (got 0s)`},
		{"handshake timeout too short", "node: {hint: wnam}\ntunnel: {insecure: true, handshake_timeout: 500ms}", role.Egress,
			`cfg.yaml: tunnel.handshake_timeout: must be at least 1s on an egress (got 500ms)`},
		{"no handshakes", "node: {hint: wnam}\ntunnel: {insecure: true, max_handshakes: 0}", role.Egress,
			`cfg.yaml: tunnel.max_handshakes: must be at least 1 on an egress (got 0)`},
		{"negative drain", "drain_timeout: -5s", role.Ingress,
			`cfg.yaml: drain_timeout: must not be negative (got -5s)`},
		{"negative accept timeout", "tunnel: {accept_timeout: -1s}", role.Ingress,
			`cfg.yaml: tunnel.accept_timeout: must not be negative (got -1s)`},
		{"negative dial", "upstream: {dial_timeout: -1ms}", role.Ingress,
			`cfg.yaml: upstream.dial_timeout: must not be negative (got -1ms)`},
		{"negative header timeout", "upstream: {header_timeout: -1m}", role.Ingress,
			`cfg.yaml: upstream.header_timeout: must not be negative (got -1m0s)`},
		{"tunnel.listen required", "node: {hint: wnam}\ntunnel: {insecure: true, listen: \"\"}", role.Egress,
			`cfg.yaml: tunnel.listen: required on an egress (host:port)`},
		{"tunnel.listen bad", "node: {hint: wnam}\ntunnel: {insecure: true, listen: nowhere}", role.Egress,
			`cfg.yaml: tunnel.listen: must be host:port (got "nowhere")`},
		{"tunnel.listen on ingress", "tunnel: {listen: nowhere}", role.Ingress,
			`cfg.yaml: tunnel.listen: must be host:port (got "nowhere")`},
		{"tunnel.advertise", "node: {hint: wnam}\ntunnel: {insecure: true, advertise: \":9443\"}", role.Egress,
			`cfg.yaml: tunnel.advertise: must name a host (got ":9443")`},
		{"tunnel.advertise from wildcard listen", "node: {hint: wnam}\ntunnel: {insecure: true, listen: \"0.0.0.0:9443\"}", role.Egress,
			`cfg.yaml: tunnel.advertise: must be an address other nodes can dial, not "0.0.0.0:9443"; set it when tunnel.listen binds every interface`},
		{"tunnel.advertise from empty-host listen", "node: {hint: wnam}\ntunnel: {insecure: true, listen: \":9443\"}", role.Egress,
			`cfg.yaml: tunnel.advertise: must name a host (got ":9443")`},
		{"max_streams", "node: {hint: wnam}\ntunnel: {insecure: true, max_streams: 0}", role.Egress,
			`cfg.yaml: tunnel.max_streams: must be at least 1 on an egress`},
		{"token characters", "tunnel: {token: \"two words\"}", role.Ingress,
			`cfg.yaml: tunnel.token: must be printable ASCII without spaces`},
		{"tls partial", "tunnel: {tls: {cert: " + os.Args[0] + "}}", role.Ingress,
			`cfg.yaml: tunnel.tls: set cert, key and ca together or none of them (missing key, ca)`},
		{"tls missing file", "tunnel: {tls: {cert: /nonexistent/c.pem, key: " + os.Args[0] + ", ca: " + os.Args[0] + "}}", role.Ingress,
			`cfg.yaml: tunnel.tls.cert: file "/nonexistent/c.pem" does not exist`},
		{"tls directory", "tunnel: {tls: {cert: " + os.TempDir() + ", key: " + os.Args[0] + ", ca: " + os.Args[0] + "}}", role.Ingress,
			`cfg.yaml: tunnel.tls.cert: "` + os.TempDir() + `" is not a regular file`},
		{"gossip.bind", "gossip: {bind: \"localhost:7946\"}", role.Ingress,
			`cfg.yaml: gossip.bind: host must be an IP address, not a name (got "localhost:7946")`},
		{"gossip.bind form", "gossip: {bind: \"7946\"}", role.Ingress,
			`cfg.yaml: gossip.bind: must be IP:port (got "7946")`},
		{"gossip.bind empty", "gossip: {bind: \"\"}", role.Ingress,
			`cfg.yaml: gossip.bind: required (IP:port)`},
		{"gossip.advertise", "gossip: {advertise: \"0.0.0.0:7946\"}", role.Ingress,
			`cfg.yaml: gossip.advertise: must be an address other nodes can reach, not "0.0.0.0:7946"`},
		{"gossip.advertise name", "gossip: {advertise: \"node.example:7946\"}", role.Ingress,
			`cfg.yaml: gossip.advertise: host must be an IP address, not a name (got "node.example:7946")`},
		{"gossip.join", "gossip: {join: [\"127.0.0.1:7947\", seed.example]}", role.Ingress,
			`cfg.yaml: gossip.join[1]: must be host:port (got "seed.example")`},
		{"gossip.join host", "gossip: {join: [\":7947\"]}", role.Ingress,
			`cfg.yaml: gossip.join[0]: must name a host (got ":7947")`},
		{"gossip.key base64", "gossip: {key: \"not base64!\"}", role.Ingress,
			`cfg.yaml: gossip.key: not valid base64 (illegal base64 data at input byte 3)`},
		{"gossip.key length", "gossip: {key: c2hvcnQ=}", role.Ingress,
			`cfg.yaml: gossip.key: decodes to 5 bytes; an AES key must be 16, 24 or 32 bytes`},
		{"gossip.label", "gossip: {label: " + strings.Repeat("x", 256) + "}", role.Ingress,
			`cfg.yaml: gossip.label: must be at most 255 bytes (got 256)`},
		{"gossip.profile", "gossip: {profile: fast}", role.Ingress,
			`cfg.yaml: gossip.profile: must be one of lan, wan, local (got "fast")`},
		{"gossip.rejoin_interval", "gossip: {rejoin_interval: -1s}", role.Ingress,
			`cfg.yaml: gossip.rejoin_interval: must not be negative (got -1s)`},
		{"routing.fallback", "routing: {fallback: sometimes}", role.Ingress,
			`cfg.yaml: routing.fallback: must be one of fail, direct, nearest (got "sometimes")`},
		{"rule without locs", "routing: {rules: [{hint: wnam}]}", role.Ingress,
			`cfg.yaml: routing.rules[0].locs: must list at least one ISO 3166 alpha-2 code`},
		{"rule with empty locs", "routing: {rules: [{locs: [], hint: wnam}]}", role.Ingress,
			`cfg.yaml: routing.rules[0].locs: must list at least one ISO 3166 alpha-2 code`},
		{"rule loc", "routing: {rules: [{locs: [HK, CHN], hint: wnam}]}", role.Ingress,
			`cfg.yaml: routing.rules[0].locs: must be ISO 3166 alpha-2 codes such as HK or US (got "CHN")`},
		{"rule hint", "routing: {rules: [{locs: [HK], hint: west}]}", role.Ingress,
			`cfg.yaml: routing.rules[0].hint: must be one of wnam, enam, weur, eeur, apac, oc, afr, sam, me (got "west")`},
		{"rule without hint", "routing: {rules: [{locs: [HK]}]}", role.Ingress,
			`cfg.yaml: routing.rules[0].hint: required (one of wnam, enam, weur, eeur, apac, oc, afr, sam, me)`},
		{"loc in two rules", "routing: {rules: [{locs: [HK], hint: wnam}, {locs: [hk], hint: enam}]}", role.Ingress,
			`cfg.yaml: routing.rules[1].locs: HK is already routed by routing.rules[0]`},
		{"provider name", "providers: {Open_AI: {base_url: \"https://x.example\"}}", role.Ingress,
			`cfg.yaml: providers.Open_AI: name must match ^[a-z0-9][a-z0-9_-]{0,31}$`},
		{"provider name length", "providers: {" + strings.Repeat("a", 33) + ": {base_url: \"https://x.example\"}}", role.Ingress,
			`cfg.yaml: providers.` + strings.Repeat("a", 33) + `: name must match ^[a-z0-9][a-z0-9_-]{0,31}$`},
		{"reserved name", "providers: {metrics: {base_url: \"https://x.example\"}}", role.Ingress,
			`cfg.yaml: providers.metrics: name is reserved for the admin routes (health, members, metrics)`},
		{"base_url scheme", "providers: {x: {base_url: \"ftp://x.example\"}}", role.Ingress,
			`cfg.yaml: providers.x.base_url: must be an absolute http or https URL`},
		{"base_url relative", "providers: {x: {base_url: \"/v1\"}}", role.Ingress,
			`cfg.yaml: providers.x.base_url: must be an absolute http or https URL`},
		{"base_url host", "providers: {x: {base_url: \"https:///v1\"}}", role.Ingress,
			`cfg.yaml: providers.x.base_url: must have a host`},
		{"base_url userinfo", "providers: {x: {base_url: \"https://user:pw@x.example\"}}", role.Ingress,
			`cfg.yaml: providers.x.base_url: must not contain user info (user:password@); send credentials from the client`},
		{"base_url query", "providers: {x: {base_url: \"https://x.example/v1?key=abc\"}}", role.Ingress,
			`cfg.yaml: providers.x.base_url: must not have a query`},
		{"base_url empty query", "providers: {x: {base_url: \"https://x.example/v1?\"}}", role.Ingress,
			`cfg.yaml: providers.x.base_url: must not have a query`},
		{"base_url fragment", "providers: {x: {base_url: \"https://x.example/v1#\"}}", role.Ingress,
			`cfg.yaml: providers.x.base_url: must not have a fragment`},
		{"base_url port", "providers: {x: {base_url: \"https://x.example:99999\"}}", role.Ingress,
			`cfg.yaml: providers.x.base_url: port must be a number from 0 to 65535`},
		{"base_url unparsable", "providers: {x: {base_url: \"https://x example\"}}", role.Ingress,
			`cfg.yaml: providers.x.base_url: is not a valid URL`},
		{"style", "providers: {openai: {style: cohere}}", role.Ingress,
			`cfg.yaml: providers.openai.style: must be one of openai, anthropic, gemini (got "cohere")`},
		{"provider body", "providers: {openai: {max_body_bytes: -2}}", role.Ingress,
			`cfg.yaml: providers.openai.max_body_bytes: must not be negative (got -2)`},
		{"log level", "log: {level: verbose}", role.Ingress,
			`cfg.yaml: log.level: must be one of debug, info, warn, error (got "verbose")`},
		{"log format", "log: {format: xml}", role.Ingress,
			`cfg.yaml: log.format: must be one of text, json (got "xml")`},
		{"listeners collide", "node: {hint: wnam}\ntunnel: {insecure: true, listen: \"127.0.0.1:8081\"}", role.Egress,
			`cfg.yaml: tunnel.listen: "127.0.0.1:8081" is also http.listen`},
		{"gossip on the http port", "gossip: {bind: \"127.0.0.1:8080\"}", role.Ingress,
			`cfg.yaml: gossip.bind: "127.0.0.1:8080" is also http.listen`},
		{"role", "", role.Role("relay"),
			`cfg.yaml: role: must be ingress or egress (got "relay")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yml, tt.role)
			lines := errorLines(err)
			for _, l := range lines {
				if l == tt.want {
					return
				}
			}
			t.Errorf("Parse(%q) error lines:\n%s\nwant the line\n%s", tt.yml, strings.Join(lines, "\n"), tt.want)
		})
	}
}

func TestValidateCollectsAll(t *testing.T) {
	_, err := parse(t, `
node: {loc: xyz, hint: nowhere}
gossip: {profile: fast}
routing: {fallback: sometimes}
log: {format: xml}
`, role.Egress)
	want := []string{
		`cfg.yaml: node.loc: must be an ISO 3166 alpha-2 code such as HK or US (got "XYZ")`,
		`cfg.yaml: node.hint: must be one of wnam, enam, weur, eeur, apac, oc, afr, sam, me (got "nowhere")`,
		`cfg.yaml: tunnel: an egress needs tunnel.tls (cert, key, ca), tunnel.token, or tunnel.insecure: true; refusing to run an open tunnel`,
		`cfg.yaml: gossip.profile: must be one of lan, wan, local (got "fast")`,
		`cfg.yaml: routing.fallback: must be one of fail, direct, nearest (got "sometimes")`,
		`cfg.yaml: log.format: must be one of text, json (got "xml")`,
	}
	if got := errorLines(err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("error =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEgressSecurityRule(t *testing.T) {
	cert, key, ca := tlsFiles(t)
	tlsYAML := "  tls: {cert: " + cert + ", key: " + key + ", ca: " + ca + "}\n"
	const refusal = "cfg.yaml: tunnel: an egress needs tunnel.tls (cert, key, ca), tunnel.token, or tunnel.insecure: true; refusing to run an open tunnel"
	tests := []struct {
		name   string
		tunnel string
		ok     bool
	}{
		{"nothing", "  listen: 127.0.0.1:0\n", false},
		{"insecure false", "  insecure: false\n", false},
		{"empty token", "  token: \"\"\n", false},
		{"token", "  token: s3cret\n", true},
		{"insecure", "  insecure: true\n", true},
		{"mutual TLS", tlsYAML, true},
		{"TLS and token", tlsYAML + "  token: s3cret\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, "node: {hint: wnam}\ntunnel:\n"+tt.tunnel, role.Egress)
			if tt.ok {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if c.Tunnel.Advertise == "" {
					t.Error("tunnel.advertise not derived from tunnel.listen")
				}
				return
			}
			if err == nil || err.Error() != refusal {
				t.Errorf("error = %v, want %q", err, refusal)
			}
		})
	}
	// An ingress has no tunnel server, so the rule does not apply.
	if _, err := parse(t, "", role.Ingress); err != nil {
		t.Errorf("ingress without tunnel security: %v", err)
	}
}

func TestValidateDerived(t *testing.T) {
	c := Default(role.Egress)
	c.Node.Hint = "WNAM"
	c.Tunnel.Insecure = true
	c.Tunnel.Listen = "127.0.0.1:0"
	c.HTTP.MaxBodyBytes = 1024
	c.Providers["extra"] = Provider{BaseURL: "https://anthropic.example/"}
	c.Providers["gemini"] = Provider{BaseURL: "https://g.example"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Node.Hint != "wnam" || c.Tunnel.Advertise != "127.0.0.1:0" {
		t.Errorf("Node, Tunnel = %+v, %+v", c.Node, c.Tunnel)
	}
	for name, want := range map[string]Provider{
		"openai": {BaseURL: "https://api.openai.com", Style: "openai", MaxBodyBytes: 1024},
		"extra":  {BaseURL: "https://anthropic.example", Style: "openai", MaxBodyBytes: 1024},
		"gemini": {BaseURL: "https://g.example", Style: "gemini", MaxBodyBytes: 1024},
	} {
		if got := c.Providers[name]; got != want {
			t.Errorf("providers.%s = %+v, want %+v", name, got, want)
		}
	}
	// Validate is idempotent.
	before := *c
	if err := c.Validate(); err != nil || c.Tunnel != before.Tunnel || c.Node != before.Node {
		t.Errorf("second Validate changed the config or failed: %v", err)
	}
	c.Node.Name = ""
	if err := c.Validate(); err != nil || !strings.HasSuffix(c.Node.Name, "-egress") {
		t.Errorf("Node.Name = %q, %v", c.Node.Name, err)
	}
}

// Tests give every listener port 0; that is never a collision.
func TestPortZeroListeners(t *testing.T) {
	c := Default(role.Egress)
	c.Node.Hint = "wnam"
	c.Tunnel.Insecure = true
	c.HTTP.Listen, c.Tunnel.Listen, c.Gossip.Bind = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidHint(t *testing.T) {
	for _, h := range Hints {
		if !ValidHint(h) {
			t.Errorf("ValidHint(%q) = false", h)
		}
	}
	for _, h := range []string{"", "WNAM", "us", "wnam "} {
		if ValidHint(h) {
			t.Errorf("ValidHint(%q) = true", h)
		}
	}
}

func TestTLSEnabled(t *testing.T) {
	for _, tt := range []struct {
		tls  TLS
		want bool
	}{
		{TLS{}, false},
		{TLS{Cert: "c", Key: "k"}, false},
		{TLS{Cert: "c", Key: "k", CA: "a"}, true},
	} {
		if got := tt.tls.Enabled(); got != tt.want {
			t.Errorf("%+v.Enabled() = %v", tt.tls, got)
		}
	}
}

func TestValidateAuthAndKeys(t *testing.T) {
	dir := t.TempDir()
	keyFile := dir + "/openai.key"
	os.WriteFile(keyFile, []byte("sk-real-from-file\n"), 0o600)
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))

	c, err := Parse([]byte(`
auth: {access_keys: [ak-1, ak-2]}
gossip: {key: `+key+`, keys: [`+key+`]}
providers:
  openai: {api_key_file: `+keyFile+`}
  anthropic: {api_key: sk-ant-real}
`), "cfg.yaml", role.Ingress, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Endpoints["openai"].APIKey.Reveal(); got != "sk-real-from-file" || !c.Endpoints["openai"].Managed() {
		t.Fatalf("openai key %q managed %v", got, c.Endpoints["openai"].Managed())
	}
	if c.Endpoints["gemini"].Managed() {
		t.Fatal("gemini managed without a key")
	}
	if ring := c.Keyring; len(ring) != 2 || len(ring[0]) != 32 {
		t.Fatalf("keyring %d keys", len(ring))
	}

	_, err = Parse([]byte(`
providers:
  openai: {api_key: sk-real}
`), "cfg.yaml", role.Ingress, nil)
	if err == nil || !strings.Contains(err.Error(), "cfg.yaml: providers.openai.api_key: the mesh holds this provider's key but auth.access_keys is empty") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(fmt.Sprint(err), "sk-real") {
		t.Fatal("error shows the key")
	}
	// On an egress the key needs no access keys: the ingress checks them.
	if _, err := Parse([]byte(`
node: {hint: wnam}
tunnel: {listen: "127.0.0.1:0", token: t}
providers:
  openai: {api_key: sk-real}
`), "cfg.yaml", role.Egress, nil); err != nil {
		t.Fatal(err)
	}
	_, err = Parse([]byte(`
gossip: {keys: [nope]}
routing: {on_region_block: mars}
admin: {listen: nowhere}
`), "cfg.yaml", role.Ingress, nil)
	for _, want := range []string{"gossip.keys[0]", "routing.on_region_block", "admin.listen"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %s", err, want)
		}
	}
}

func TestAccessKeyForms(t *testing.T) {
	c, err := Parse([]byte(`
auth:
  access_keys:
    - ak-all
    - {key: "${TEAM_A}", providers: [openai, anthropic]}
    - key: ak-gemini
      providers: [gemini]
    - &shared ak-shared
providers:
  openai: {api_key: sk-1}
  anthropic: {api_key: sk-2}
  gemini: {api_key: sk-3}
`), "cfg.yaml", role.Ingress, env(map[string]string{"TEAM_A": "ak-team-a"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []AccessKey{
		{Key: "ak-all"},
		{Key: "ak-team-a", Providers: []string{"openai", "anthropic"}},
		{Key: "ak-gemini", Providers: []string{"gemini"}},
		{Key: "ak-shared"},
	}
	if !reflect.DeepEqual(c.Auth.AccessKeys, want) {
		t.Fatalf("access keys = %+v, want %+v", c.Auth.AccessKeys, want)
	}
	if s := fmt.Sprintf("%v %+v", c.Auth, c.Auth.AccessKeys); strings.Contains(s, "ak-") {
		t.Errorf("access keys print: %s", s)
	}
	for _, tc := range []struct {
		key      int
		provider string
		want     bool
	}{
		{0, "openai", true}, {0, "gemini", true}, {1, "openai", true}, {1, "anthropic", true},
		{1, "gemini", false}, {2, "gemini", true}, {2, "openai", false},
	} {
		if got := c.Auth.AccessKeys[tc.key].Grants(tc.provider); got != tc.want {
			t.Errorf("access_keys[%d].Grants(%s) = %v", tc.key, tc.provider, got)
		}
	}
}

// An access key may be an alias (yaml resolves it before
// AccessKey.UnmarshalYAML sees it) or merge another.
func TestAccessKeyAlias(t *testing.T) {
	c := mustParse(t, `
admin: {token: &k ak-shared}
auth: {access_keys: [*k, &t {key: ak-2, providers: [openai]}, {<<: *t, key: ak-3}]}
providers: {openai: {api_key: sk-1}}
`, role.Ingress)
	want := []AccessKey{{Key: "ak-shared"}, {Key: "ak-2", Providers: []string{"openai"}}, {Key: "ak-3", Providers: []string{"openai"}}}
	if !reflect.DeepEqual(c.Auth.AccessKeys, want) {
		t.Errorf("access keys = %+v", c.Auth.AccessKeys)
	}
}

func TestAccessKeyErrors(t *testing.T) {
	const head = "providers:\n  openai: {api_key: sk-1}\n  anthropic: {api_key: sk-2}\n  gemini: {disabled: true, api_key: sk-3}\nauth:\n  access_keys:\n"
	tests := []struct {
		name, keys, want string
	}{
		{"unknown provider", "    - {key: ak-1, providers: [openai, opnai]}\n",
			`cfg.yaml: auth.access_keys[0].providers[1]: unknown provider "opnai" (known: anthropic, gemini, openai, openrouter)`},
		{"pass-through provider", "    - {key: ak-1, providers: [openrouter]}\n",
			`cfg.yaml: auth.access_keys[0].providers[0]: provider "openrouter" is not managed (clients send their own key there, so access keys are not checked); set its api_key or managed_key: true`},
		{"disabled provider", "    - {key: ak-1, providers: [gemini]}\n",
			`cfg.yaml: auth.access_keys[0].providers[0]: provider "gemini" is disabled`},
		{"empty list", "    - {key: ak-1, providers: []}\n",
			`cfg.yaml: auth.access_keys[0].providers: must name at least one provider; leave it out to grant every managed provider`},
		{"no key", "    - {providers: [openai]}\n",
			`cfg.yaml: auth.access_keys[0]: must be non-empty printable ASCII without spaces`},
		{"duplicate", "    - ak-1\n    - {key: ak-1, providers: [openai]}\n",
			`cfg.yaml: auth.access_keys[1]: the same key as auth.access_keys[0]; list each key once, with every provider it grants`},
		{"unknown field", "    - {key: ak-1, provider: [openai]}\n",
			`cfg.yaml:7: auth.access_keys[0].provider: unknown key; known keys are key, providers`},
		{"providers not a list", "    - {key: ak-1, providers: openai}\n",
			`cfg.yaml:7: auth.access_keys[0].providers: must be a list (got "openai")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(head+tt.keys), "cfg.yaml", role.Ingress, nil)
			if !slices.Contains(errorLines(err), tt.want) {
				t.Errorf("error =\n%v\nwant the line\n%s", err, tt.want)
			}
			if strings.Contains(fmt.Sprint(err), "ak-1") {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

func TestDisabledProvider(t *testing.T) {
	c := mustParse(t, "providers:\n  gemini: {disabled: true}\n  openai: {disabled: true, api_key: sk-1}\n", role.Ingress)
	if !c.Providers["gemini"].Disabled || c.Providers["anthropic"].Disabled {
		t.Fatalf("providers = %+v", c.Providers)
	}
	// A disabled managed provider needs no access keys: nothing can spend its key.
	if !c.Providers["openai"].Disabled {
		t.Fatal("openai not disabled")
	}
	// disabled: false changes nothing.
	if c := mustParse(t, "providers:\n  gemini: {disabled: false}\n", role.Ingress); c.Providers["gemini"].Disabled {
		t.Fatal("disabled: false disabled gemini")
	}
}

func TestBillingHeaders(t *testing.T) {
	c := mustParse(t, `
auth: {access_keys: [ak-1]}
providers:
  openai: {api_key: sk-1, organization: org-abc, project: proj_123}
`, role.Ingress)
	if p := c.Providers["openai"]; p.Organization != "org-abc" || p.Project != "proj_123" {
		t.Fatalf("openai = %+v", p)
	}
	for _, tc := range []struct{ yml, want string }{
		{"providers: {openai: {organization: org-abc}}",
			"cfg.yaml: providers.openai.organization: is sent with this node's api_key; set it where api_key is set (the mesh does not hold this provider's key here)"},
		{"auth: {access_keys: [ak-1]}\nproviders: {openai: {managed_key: true, project: proj_1}}",
			"cfg.yaml: providers.openai.project: is sent with this node's api_key; set it where api_key is set (the mesh does not hold this provider's key here)"},
		{"auth: {access_keys: [ak-1]}\nproviders: {openai: {api_key: sk-1, organization: \"org abc\"}}",
			"cfg.yaml: providers.openai.organization: must be printable ASCII without spaces"},
	} {
		_, err := parse(t, tc.yml, role.Ingress)
		if !slices.Contains(errorLines(err), tc.want) {
			t.Errorf("%s: error =\n%v\nwant the line\n%s", tc.yml, err, tc.want)
		}
	}
}
