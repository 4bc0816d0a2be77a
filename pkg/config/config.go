package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/llmesh/llmesh/pkg/role"
	"github.com/llmesh/llmesh/pkg/routing"
)

// Hints are the Cloudflare-style location hints, in this order.
var Hints = routing.Hints

// ValidHint reports whether h is one of Hints.
func ValidHint(h string) bool { return routing.ValidHint(h) }

// Config is a node's configuration as the file states it, over the
// defaults. Validate checks and normalises it without reading any file;
// Runtime turns it into what a node runs with.
type Config struct {
	Role         role.Role           `yaml:"-"`
	File         string              `yaml:"-"` // path it was loaded from ("" for defaults)
	Node         Node                `yaml:"node"`
	HTTP         HTTP                `yaml:"http"`
	Tunnel       Tunnel              `yaml:"tunnel"`
	Gossip       Gossip              `yaml:"gossip"`
	Routing      Routing             `yaml:"routing"`
	Upstream     Upstream            `yaml:"upstream"`
	Providers    map[string]Provider `yaml:"providers"`
	Auth         Auth                `yaml:"auth"`
	Admin        Admin               `yaml:"admin"`
	Log          Log                 `yaml:"log"`
	Reload       Reload              `yaml:"reload"`
	DrainTimeout time.Duration       `yaml:"drain_timeout"` // default 30s
}

// Reload configures re-reading the config at run time. SIGHUP always
// reloads; Watch also reloads when the file, or a file it names, changes.
type Reload struct {
	Watch    bool          `yaml:"watch"`    // poll the config file and its api_key_files; default false
	Interval time.Duration `yaml:"interval"` // how often Watch looks; default 5s
}

// Node says where this node runs.
type Node struct {
	Name string `yaml:"name"` // default: os.Hostname() + "-" + role
	Loc  string `yaml:"loc"`  // ISO 3166 alpha-2, normalised to upper case; optional
	Colo string `yaml:"colo"` // normalised to upper case; optional
	Hint string `yaml:"hint"` // one of Hints; optional on an ingress, required on an egress
}

// HTTP is the node's HTTP listener: provider routes (ingress) and admin routes.
type HTTP struct {
	Listen            string        `yaml:"listen"`              // default ingress 127.0.0.1:8080, egress 127.0.0.1:8081
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // default 10s
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // default 120s
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`    // default 64 KiB
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`      // default 32 MiB (33554432)
	MaxInFlight       int           `yaml:"max_in_flight"`       // proxied requests in flight before 503 + Retry-After; default 4096, 0 = no cap
	SSEKeepalive      time.Duration `yaml:"sse_keepalive"`       // send an SSE comment after this much silence; 0 (default) = off
	// A request body may wait at most BodyIdleTimeout for data, and after
	// that much grace must average MinBodyRate bytes/s; else 408.
	BodyIdleTimeout      time.Duration `yaml:"body_idle_timeout"`        // default 30s; 0 = no body timeouts
	MinBodyRate          int64         `yaml:"min_body_rate"`            // bytes/s; default 4096; 0 = idle timeout only
	MaxStreamsPerConn    int           `yaml:"max_streams_per_conn"`     // concurrent HTTP/2 streams per client connection; default 100, 0 = Go's 250
	MaxInFlightPerClient int           `yaml:"max_in_flight_per_client"` // proxied requests in flight per client IP (IPv6 /64) before 429; default 0 = no cap
}

// Auth guards providers whose real key the mesh holds (see Provider.APIKey).
type Auth struct {
	// AccessKeys are the keys clients present, in the provider's usual
	// credential slot, instead of the real provider key.
	AccessKeys []AccessKey `yaml:"access_keys"`
}

// AccessKey is one key clients present, and the managed providers it grants.
// In YAML it is the key alone (every managed provider) or a mapping:
// {key: ${TEAM_A_KEY}, providers: [openai, anthropic]}.
type AccessKey struct {
	Key       Secret   `yaml:"key"`
	Providers []string `yaml:"providers"` // nil: every managed provider
}

// UnmarshalYAML reads either form. The walker has checked the shape, and
// yaml resolves an alias before it calls this.
func (k *AccessKey) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*k = AccessKey{}
		return n.Decode(&k.Key)
	}
	type plain AccessKey // without this method
	return n.Decode((*plain)(k))
}

// Grants reports whether the key may be used for the named provider.
func (k AccessKey) Grants(provider string) bool {
	return k.Providers == nil || slices.Contains(k.Providers, provider)
}

// Admin places the admin routes (/members, /metrics). /health stays public
// on http.listen.
type Admin struct {
	Listen string `yaml:"listen"` // separate listener for the admin routes; "" = on http.listen
	Token  Secret `yaml:"token"`  // when set, admin routes need Authorization: Bearer <token>
}

// Tunnel is the gRPC tunnel between ingress and egress nodes.
type Tunnel struct {
	Listen     string `yaml:"listen"`    // egress: default 127.0.0.1:9443; unused on ingress
	Advertise  string `yaml:"advertise"` // default: Listen (filled by Validate)
	Token      Secret `yaml:"token"`
	TLS        TLS    `yaml:"tls"`
	Insecure   bool   `yaml:"insecure"`
	MaxStreams uint32 `yaml:"max_streams"` // egress: concurrent streams per connection and in-flight cap; default 1000
	// Ping a quiet tunnel connection every Keepalive and give up on the peer
	// after KeepaliveTimeout more: a vanished peer's streams fail within the
	// sum. Defaults 10s and 10s; keepalive at least 10s (grpc-go's floor).
	Keepalive        time.Duration `yaml:"keepalive"`
	KeepaliveTimeout time.Duration `yaml:"keepalive_timeout"`
	// egress: a new connection must finish its handshake (TLS, or the
	// HTTP/2 preface in plaintext) within HandshakeTimeout, and at most
	// MaxHandshakes may be in their handshake at once; more are closed at
	// once. Defaults 10s and 256.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	MaxHandshakes    int           `yaml:"max_handshakes"`
	// ingress: an egress that has not accepted an exchange this long after
	// its stream opened never sent it to the provider; the exchange is
	// cancelled and goes to another egress of the hint. Default 1s; 0: wait
	// for the keepalive instead.
	AcceptTimeout time.Duration `yaml:"accept_timeout"`
}

// TLS names the PEM files for mutual TLS on the tunnel.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	CA   string `yaml:"ca"`
}

// Enabled reports whether all three files are set.
func (t TLS) Enabled() bool { return t.Cert != "" && t.Key != "" && t.CA != "" }

// Gossip configures memberlist.
type Gossip struct {
	Bind           string        `yaml:"bind"`            // IP:port; default ingress 127.0.0.1:7946, egress 127.0.0.1:7947
	Advertise      string        `yaml:"advertise"`       // IP:port
	Join           []string      `yaml:"join"`            // host:port of seeds
	Key            Secret        `yaml:"key"`             // base64, 16/24/32 bytes once decoded
	Keys           []Secret      `yaml:"keys"`            // keyring: more keys, accepted for decryption; the first key (key, else keys[0]) encrypts
	Label          string        `yaml:"label"`           // keeps two meshes apart
	Profile        string        `yaml:"profile"`         // lan | wan | local; default wan
	RejoinInterval time.Duration `yaml:"rejoin_interval"` // default 30s
}

// KeyBytes returns the decoded gossip key, or nil when none is set.
// Its errors never contain the key.
func (g Gossip) KeyBytes() ([]byte, error) {
	if g.Key == "" {
		return nil, nil
	}
	return decodeKey(g.Key)
}

func decodeKey(k Secret) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k.Reveal()))
	if err != nil {
		// A CorruptInputError gives only a byte offset, never the input.
		return nil, fmt.Errorf("not valid base64 (%v)", err)
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, fmt.Errorf("decodes to %d bytes; an AES key must be 16, 24 or 32 bytes", len(b))
}

// Routing says which requests leave through an egress (ingress only).
type Routing struct {
	Rules           []Rule        `yaml:"rules"`
	Fallback        string        `yaml:"fallback"` // fail | direct | nearest; default fail
	AllowClientHint bool          `yaml:"allow_client_hint"`
	OnRegionBlock   string        `yaml:"on_region_block"`   // hint to retry through when a provider refuses this region; "" = off
	RegionBlockTTL  time.Duration `yaml:"region_block_ttl"`  // how long a refusal sends a provider's requests to that pool; default 15m
	RetryBodyBytes  int64         `yaml:"retry_body_bytes"`  // request bodies up to this size are kept for a retry; default 1 MiB
	RetryBodyBudget int64         `yaml:"retry_body_budget"` // memory for all kept bodies together; past it bodies stream unkept; default 64 MiB, 0 = no bound
}

// Rule sends requests from nodes at Locs to an egress with Hint.
type Rule struct {
	Locs []string `yaml:"locs"` // normalised to upper case
	Hint string   `yaml:"hint"`
}

// Upstream bounds calls to providers.
type Upstream struct {
	DialTimeout   time.Duration `yaml:"dial_timeout"`   // default 10s
	HeaderTimeout time.Duration `yaml:"header_timeout"` // wait for provider response headers; default 10m (reasoning models are slow)
}

// Provider is an upstream LLM API.
type Provider struct {
	BaseURL      string `yaml:"base_url"`       // absolute http(s) URL, no trailing slash once validated
	Style        string `yaml:"style"`          // error JSON shape: openai | anthropic | gemini; default: "anthropic" for name anthropic, "gemini" for gemini, else "openai"
	MaxBodyBytes int64  `yaml:"max_body_bytes"` // default: http.max_body_bytes (filled by Validate)
	APIKey       Secret `yaml:"api_key"`        // the real key, on the node that calls the provider
	APIKeyFile   string `yaml:"api_key_file"`   // or a file holding it (read by Runtime, into Endpoint.APIKey)
	// ManagedKey: clients present an access key and the mesh injects the
	// real key (here, or on the egress for tunnelled requests). Default: true
	// when api_key or api_key_file is set.
	ManagedKey *bool `yaml:"managed_key"`
	// Organization and Project are sent as OpenAI-Organization and
	// OpenAI-Project with the real key: they choose what the key bills. On a
	// managed provider the client's own are removed.
	Organization string `yaml:"organization"`
	Project      string `yaml:"project"`
	// Disabled removes the provider from this node: its path prefix is an
	// unknown provider (404), as if it were never configured.
	Disabled bool `yaml:"disabled"`
}

// Managed reports whether the mesh holds this provider's key.
func (p Provider) Managed() bool { return p.ManagedKey != nil && *p.ManagedKey }

// Log configures the node's slog handler.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error; default info
	Format string `yaml:"format"` // text | json; default text
}

// BuiltinProviders returns a new map of the providers every node knows.
func BuiltinProviders() map[string]Provider {
	return map[string]Provider{
		"openai":     {BaseURL: "https://api.openai.com", Style: "openai"},
		"anthropic":  {BaseURL: "https://api.anthropic.com", Style: "anthropic"},
		"openrouter": {BaseURL: "https://openrouter.ai/api", Style: "openai"},
		"gemini":     {BaseURL: "https://generativelanguage.googleapis.com", Style: "gemini"},
	}
}

// Default returns the built-in configuration of a role. It passes Validate
// for an ingress; an egress still needs node.hint and a way to secure its
// tunnel. Fields derived from other fields (tunnel.advertise, providers'
// max_body_bytes) are left for Validate, so that changing HTTP.MaxBodyBytes
// or Tunnel.Listen before validating carries through.
func Default(r role.Role) *Config {
	c := &Config{
		Role: r,
		Node: Node{Name: defaultName(r)},
		HTTP: HTTP{
			Listen:            "127.0.0.1:8080",
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			MaxBodyBytes:      32 << 20,
			MaxInFlight:       4096,
			BodyIdleTimeout:   30 * time.Second,
			MinBodyRate:       4096,
			MaxStreamsPerConn: 100,
		},
		Tunnel: Tunnel{MaxStreams: 1000, Keepalive: 10 * time.Second, KeepaliveTimeout: 10 * time.Second,
			HandshakeTimeout: 10 * time.Second, MaxHandshakes: 256, AcceptTimeout: time.Second},
		Gossip: Gossip{
			Bind:           "127.0.0.1:7946",
			Profile:        "wan",
			RejoinInterval: 30 * time.Second,
		},
		Routing: Routing{Fallback: "fail", RegionBlockTTL: 15 * time.Minute, RetryBodyBytes: 1 << 20, RetryBodyBudget: 64 << 20},
		Upstream: Upstream{
			DialTimeout:   10 * time.Second,
			HeaderTimeout: 10 * time.Minute,
		},
		Providers:    BuiltinProviders(),
		Log:          Log{Level: "info", Format: "text"},
		Reload:       Reload{Interval: 5 * time.Second},
		DrainTimeout: 30 * time.Second,
	}
	if r == role.Egress {
		c.HTTP.Listen = "127.0.0.1:8081"
		c.Tunnel.Listen = "127.0.0.1:9443"
		c.Gossip.Bind = "127.0.0.1:7947"
	}
	return c
}

func defaultName(r role.Role) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "llmesh"
	}
	return host + "-" + string(r)
}

// Read reads the config file at path over Default(r), unchecked but for
// its shape (unknown keys, wrongly typed values, unset ${NAME}): Runtime
// checks the rest. -check uses it to report the problems of every stage.
func Read(path string, r role.Role) (*Config, error) {
	if path == "" {
		return Default(r), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return decode(data, path, r, os.LookupEnv)
}

// Load reads the config file at path over Default(r), or takes
// Default(r) when path is "", and returns it checked and ready to run
// (see Runtime). Every problem is reported at once.
func Load(path string, r role.Role) (*Runtime, error) {
	c, err := Read(path, r)
	if err != nil {
		return nil, err
	}
	return c.Runtime()
}

// Parse is Load from data: it reads a YAML config over Default(r) and
// returns it checked and ready to run, reading the files it names. file
// names the source in errors. ${NAME} in values is replaced by
// lookupEnv(NAME); a nil lookupEnv means an empty environment.
func Parse(data []byte, file string, r role.Role, lookupEnv func(string) (string, bool)) (*Runtime, error) {
	c, err := decode(data, file, r, lookupEnv)
	if err != nil {
		return nil, err
	}
	return c.Runtime()
}

// decode reads a YAML config over Default(r), unchecked but for its
// shape: unknown keys and wrongly typed values are errors.
func decode(data []byte, file string, r role.Role, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	c := Default(r)
	c.File = file

	root, err := parseYAML(data, sourceName(file))
	if err != nil {
		return nil, err
	}
	if root == nil {
		return c, nil // no document: the defaults
	}
	w := walker{file: sourceName(file), lookupEnv: lookupEnv, expanded: map[*yaml.Node]bool{}, active: map[*yaml.Node]bool{}}
	w.walk(root, reflect.TypeFor[Config](), "")
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	builtin := c.Providers
	c.Providers = nil // decoded again below, each over its built-in value
	if err := root.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %w", sourceName(file), err)
	}
	if c.Providers, err = overlayProviders(root, builtin); err != nil {
		return nil, fmt.Errorf("%s: %w", sourceName(file), err)
	}
	return c, nil
}

func sourceName(file string) string {
	if file == "" {
		return "defaults"
	}
	return file
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// parseYAML returns the top node of the single document in data, or nil when
// data holds no document.
func parseYAML(data []byte, file string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1]) // 0 when yaml gave no line
			msg := m[2]
			if bytes.Contains(data, []byte("${")) && strings.Contains(msg, "did not find expected ','") {
				// In {...} and [...], a plain ${NAME} ends at its "}".
				msg += ` (quote a ${NAME} value inside {...} or [...]: "${NAME}")`
			}
			return nil, &FieldError{File: file, Line: line, Msg: msg}
		}
		return nil, &FieldError{File: file, Msg: err.Error()}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &FieldError{File: file, Line: extra.Line, Msg: "more than one YAML document"}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// overlayProviders decodes each provider the file names over its built-in
// value (the zero Provider for a new name), so that a field the file sets
// overrides and every other keeps the built-in, whatever fields Provider
// has. (Decoding into the map itself would replace whole entries.)
func overlayProviders(root *yaml.Node, builtin map[string]Provider) (map[string]Provider, error) {
	var file struct {
		Providers map[string]yaml.Node `yaml:"providers"`
	}
	if err := root.Decode(&file); err != nil { // resolves aliases and merge keys
		return nil, err
	}
	out := builtin
	if out == nil {
		out = map[string]Provider{}
	}
	for name, n := range file.Providers {
		p := out[name]
		if err := n.Decode(&p); err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}

// SlogLevel is Log.Level as a slog.Level (info when unknown).
func (c *Config) SlogLevel() slog.Level {
	switch strings.ToLower(c.Log.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// FieldError is one problem in a configuration.
type FieldError struct {
	File string // file name, or "defaults"
	Line int    // 0 when unknown
	Key  string // dotted path such as "routing.rules[0].hint"; "" for the whole file
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}
