package provider

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Style names the JSON error shape a provider's SDKs parse.
type Style string

const (
	StyleOpenAI    Style = "openai"    // {"error":{"message","type","code"}}
	StyleAnthropic Style = "anthropic" // {"type":"error","error":{"type","message"}}
	StyleGemini    Style = "gemini"    // {"error":{"code","message","status"}}
)

// Provider is one upstream API.
type Provider struct {
	Name         string
	Base         *url.URL // scheme, host and base path; never a query or userinfo
	Style        Style
	MaxBodyBytes int64
	// APIKey is the real key this node injects; "" when it holds none.
	APIKey string
	// Managed: clients present an access key instead of a provider key,
	// and the mesh injects the real one (here or on the egress).
	Managed bool
	// Organization and Project go out with APIKey as OpenAI-Organization
	// and OpenAI-Project: they choose what the key bills. "" sends none.
	Organization, Project string
}

// New checks baseURL and returns a provider. The base URL must be absolute
// http(s) with a host and nothing but a path after it.
func New(name, baseURL string, style Style, maxBody int64) (*Provider, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("provider %s: base_url: %w", name, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("provider %s: base_url must be http(s)://host[/path]", name)
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}
	if u.RawPath != "" {
		base.RawPath = strings.TrimRight(u.RawPath, "/")
	}
	switch style {
	case StyleOpenAI, StyleAnthropic, StyleGemini:
	case "":
		style = StyleOpenAI
	default:
		return nil, fmt.Errorf("provider %s: unknown style %q", name, style)
	}
	return &Provider{Name: name, Base: base, Style: style, MaxBodyBytes: maxBody}, nil
}

// URL returns the upstream URL for a request path below the provider prefix.
// rest must have passed SplitPath: the result keeps the base's scheme, host
// and path prefix whatever rest holds, because it is assembled from parts and
// never parsed from a concatenated string.
func (p *Provider) URL(rest Path, rawQuery string) *url.URL {
	return &url.URL{
		Scheme:   p.Base.Scheme,
		Host:     p.Base.Host,
		Path:     p.Base.Path + rest.Path,
		RawPath:  p.Base.EscapedPath() + rest.RawPath,
		RawQuery: rawQuery,
	}
}

// Registry maps provider names to providers. It is immutable once built.
type Registry struct {
	byName map[string]*Provider
}

// NewRegistry builds a registry from providers.
func NewRegistry(ps ...*Provider) *Registry {
	r := &Registry{byName: make(map[string]*Provider, len(ps))}
	for _, p := range ps {
		r.byName[p.Name] = p
	}
	return r
}

// Get returns the provider called name.
func (r *Registry) Get(name string) (*Provider, bool) {
	p, ok := r.byName[name]
	return p, ok
}

// Names returns the provider names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
