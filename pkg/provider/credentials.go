package provider

import (
	"net/http"
	"net/url"
	"strings"
)

// Where each provider's SDKs put the API key. A client may present an access
// key in any slot of its provider's style; the real key goes in the first.
//   openai (and OpenRouter): Authorization: Bearer
//   anthropic:               x-api-key, or Authorization: Bearer (the JS SDK)
//   gemini:                  x-goog-api-key, or ?key=

// credentialHeaders are the key slots of every style, by normalised name.
var credentialHeaders = map[string]bool{"authorization": true, "x-api-key": true, "x-goog-api-key": true}

// ClientKey returns the credential the client sent in one of style's slots.
func ClientKey(style Style, h http.Header, rawQuery string) (string, bool) {
	if style == StyleAnthropic {
		if k := h.Get("X-Api-Key"); k != "" {
			return k, true
		}
	}
	if style == StyleGemini {
		if k := h.Get("X-Goog-Api-Key"); k != "" {
			return k, true
		}
		if k, ok := queryKey(rawQuery); ok {
			return k, true
		}
		return "", false
	}
	if v := h.Get("Authorization"); v != "" {
		if k, ok := cutPrefixFold(v, "Bearer "); ok && strings.TrimSpace(k) != "" {
			return strings.TrimSpace(k), true
		}
	}
	return "", false
}

// keyBound are the headers that go with a key, by normalised name: they
// choose which of the key owner's organizations and projects a request bills.
var keyBound = map[string]bool{"openai-organization": true, "openai-project": true}

// StripCredentials removes every credential slot of every provider from the
// header, and the headers bound to a key (OpenAI-Organization,
// OpenAI-Project), and returns the query without its key parameter: nothing
// the client sent as a key, or to pick what the injected key bills, may
// reach the provider next to the injected one.
func StripCredentials(h http.Header, rawQuery string) string {
	for k := range h {
		// Whatever the spelling (X_Api_Key, x-goog-api-key): a server that
		// folds '_' into '-' would read it as a key.
		var buf [maxNormName]byte
		if n := normName(buf[:0], k); credentialHeaders[string(n)] || keyBound[string(n)] {
			delete(h, k)
		}
	}
	if rawQuery == "" {
		return ""
	}
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil && n == "key" || name == "key" {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// InjectKey puts the provider's real key in style's primary slot.
func InjectKey(style Style, h http.Header, key string) {
	switch style {
	case StyleAnthropic:
		h.Set("X-Api-Key", key)
	case StyleGemini:
		h.Set("X-Goog-Api-Key", key)
	default:
		h.Set("Authorization", "Bearer "+key)
	}
}

// Inject puts p's real key in its style's primary slot, with the
// organization and project configured for it. Call StripCredentials first.
func (p *Provider) Inject(h http.Header) {
	InjectKey(p.Style, h, p.APIKey)
	if p.Organization != "" {
		h.Set("OpenAI-Organization", p.Organization)
	}
	if p.Project != "" {
		h.Set("OpenAI-Project", p.Project)
	}
}

// KeySlot names style's primary slot, for error messages.
func KeySlot(style Style) string {
	switch style {
	case StyleAnthropic:
		return "x-api-key"
	case StyleGemini:
		return "x-goog-api-key"
	}
	return "Authorization: Bearer"
}

func queryKey(rawQuery string) (string, bool) {
	for p := range strings.SplitSeq(rawQuery, "&") {
		name, value, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err != nil || n != "key" {
			continue
		}
		if v, err := url.QueryUnescape(value); err == nil && v != "" {
			return v, true
		}
	}
	return "", false
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}
