package provider

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestSplitPath(t *testing.T) {
	ok := []struct {
		in, name, path, raw string
	}{
		{"/openai", "openai", "", ""},
		{"/openai/", "openai", "/", "/"},
		{"/openai/v1/chat/completions", "openai", "/v1/chat/completions", "/v1/chat/completions"},
		{"/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent", "gemini", "/v1beta/models/gemini-2.0-flash:streamGenerateContent", "/v1beta/models/gemini-2.0-flash:streamGenerateContent"},
		{"/openai/v1/files/a%20b", "openai", "/v1/files/a b", "/v1/files/a%20b"},
		{"/openai/v1/x@evil.com", "openai", "/v1/x@evil.com", "/v1/x@evil.com"},
		{"/openai/v1/...", "openai", "/v1/...", "/v1/..."},
		{"/openai/v1/a%3Fb", "openai", "/v1/a?b", "/v1/a%3Fb"},
	}
	for _, tc := range ok {
		name, rest, err := SplitPath(tc.in)
		if err != nil || name != tc.name || rest.Path != tc.path || rest.RawPath != tc.raw {
			t.Errorf("SplitPath(%q) = %q, %+v, %v; want %q, %q, %q", tc.in, name, rest, err, tc.name, tc.path, tc.raw)
		}
	}
	bad := []string{
		"", "openai/v1", "//evil.com/x", "/openai//v1", "/openai/v1//", "/openai/../admin",
		"/openai/v1/..", "/openai/./v1", "/openai/%2e%2e/x", "/openai/%2E./x", "/openai/.%2e",
		"/openai/v1%2fchat", "/openai/v1%2Fchat", "/openai/v1%5cchat", "/openai/v1\\chat",
		"/openai/v1/\x00", "/openai/v1/%00", "/openai/v1/%0d%0aHost:x", "/openai/v1/\x7f",
		"/openai/v1/%zz", "/../openai/v1", "/%2e%2e/x", "/openai/v1/%", "/openai/%09",
	}
	for _, in := range bad {
		if _, _, err := SplitPath(in); !errors.Is(err, ErrBadPath) {
			t.Errorf("SplitPath(%q) err = %v, want ErrBadPath", in, err)
		}
	}
}

func TestURLKeepsBase(t *testing.T) {
	p, err := New("openrouter", "https://openrouter.ai/api/", StyleOpenAI, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, err := SplitPath("/openrouter/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	got := p.URL(rest, "a=1&key=x").String()
	if want := "https://openrouter.ai/api/v1/chat/completions?a=1&key=x"; got != want {
		t.Fatalf("URL = %q, want %q", got, want)
	}
}

func TestNewRejectsBadBase(t *testing.T) {
	for _, base := range []string{"ftp://x", "https://", "https://u:p@host", "https://h/?q=1", "https://h/#f", "/relative", "mailto:x@y"} {
		if _, err := New("x", base, StyleOpenAI, 0); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
}

// FuzzSplitPath checks the invariant that matters: whatever the client sends,
// the upstream URL keeps the provider's scheme, host and base path, and holds
// no dot segment or empty segment.
func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"/openai/v1/chat/completions", "/openai/../x", "/openai/%2e%2e/x", "//evil.com/", "/openai/v1%2f..", "/openai/@evil.com", "/openai/v1/a%3Fb#c", "/openai/v1/\\..\\"} {
		f.Add(s, "a=1")
	}
	p, err := New("openai", "https://api.example.com/base", StyleOpenAI, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		_, rest, err := SplitPath(path)
		if err != nil {
			return
		}
		u := p.URL(rest, "")
		parsed, err := url.Parse(u.String())
		if err != nil {
			t.Fatalf("built URL %q does not parse: %v", u, err)
		}
		if parsed.Scheme != "https" || parsed.Host != "api.example.com" || parsed.User != nil {
			t.Fatalf("path %q moved the URL to %q", path, u)
		}
		if !strings.HasPrefix(parsed.Path, "/base") {
			t.Fatalf("path %q left the base path: %q", path, parsed.Path)
		}
		for _, seg := range strings.Split(parsed.Path, "/")[1:] {
			if seg == "." || seg == ".." {
				t.Fatalf("path %q produced dot segment in %q", path, parsed.Path)
			}
		}
	})
}
