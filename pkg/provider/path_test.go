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
		// Real provider paths: fine-tuned model names, ids, Gemini methods.
		{"/openai/v1/models/ft:gpt-4o-mini-2024-07-18:org:custom:9abc", "openai", "/v1/models/ft:gpt-4o-mini-2024-07-18:org:custom:9abc", "/v1/models/ft:gpt-4o-mini-2024-07-18:org:custom:9abc"},
		{"/openai/v1/fine_tuning/jobs/ftjob-abc123/events", "openai", "/v1/fine_tuning/jobs/ftjob-abc123/events", "/v1/fine_tuning/jobs/ftjob-abc123/events"},
		{"/anthropic/v1/messages/batches/msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d/results", "anthropic", "/v1/messages/batches/msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d/results", "/v1/messages/batches/msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d/results"},
		{"/gemini/v1beta/files/abc-123", "gemini", "/v1beta/files/abc-123", "/v1beta/files/abc-123"},
		{"/gemini/v1beta/tunedModels/my-model-1:generateContent", "gemini", "/v1beta/tunedModels/my-model-1:generateContent", "/v1beta/tunedModels/my-model-1:generateContent"},
		// ';' after something else is only a character.
		{"/openai/v1/a;b", "openai", "/v1/a;b", "/v1/a;b"},
		{"/openai/v1/...;x", "openai", "/v1/...;x", "/v1/...;x"},
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
		// Dot segments once ';' parameters are dropped.
		"/openai/v1/..;/x", "/openai/..;", "/openai/v1/..;a=b/x", "/openai/v1/.;x", "/openai/v1/.;/x",
		"/openai/v1/%2e%2e;/x", "/openai/v1/..%3b/x", "/openai/v1/..%3B", "/..;/openai/v1", "/openai/v1/;x/y", "/openai/v1/;",
		// Escapes left after decoding: a server that decodes twice resolves them.
		"/openai/v1/%252e%252e/x", "/openai/%252E%252E/x", "/openai/v1%252fchat", "/openai/v1%252Fchat",
		"/openai/v1/%255cx", "/openai/v1/%2525", "/openai/v1/%25u002e%25u002e/x", "/openai/v1/100%25",
		"/openai/v1/%252e%252e;/x", "/%252e%252e/x",
	}
	for _, in := range bad {
		_, _, err := SplitPath(in)
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("SplitPath(%q) err = %v, want ErrBadPath", in, err)
		} else if msg := err.Error(); !strings.HasPrefix(msg, "malformed path: ") {
			t.Errorf("SplitPath(%q) err = %q, want malformed path: ...", in, msg)
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
	for _, s := range []string{"/openai/v1/chat/completions", "/openai/../x", "/openai/%2e%2e/x", "//evil.com/", "/openai/v1%2f..", "/openai/@evil.com", "/openai/v1/a%3Fb#c", "/openai/v1/\\..\\",
		"/openai/v1/..;/x", "/openai/v1/%252e%252e/x", "/openai/v1%252fx", "/openai/v1/a;b/", "/openai/v1/%2e%2e%3b"} {
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
		checkLooseReading(t, path, rest)
	})
}

// checkLooseReading fails t if a server that decodes the path once more, or
// drops ';' parameters, would read rest as leaving its place: a dot or empty
// segment, or a slash or backslash beyond those already in rest.
func checkLooseReading(t *testing.T, path string, rest Path) {
	t.Helper()
	if rest.RawPath == "" {
		return
	}
	segs := strings.Split(rest.RawPath[1:], "/")
	for i, seg := range segs {
		once, err := url.PathUnescape(seg)
		if err != nil {
			t.Fatalf("path %q: accepted segment %q does not decode", path, seg)
		}
		twice, err := url.PathUnescape(once)
		if err != nil {
			twice = once // a strict second decoder stops here
		}
		for _, dec := range []string{once, twice} {
			if strings.ContainsAny(dec, "/\\") {
				t.Fatalf("path %q: segment %q reads as %q, a slash or backslash", path, seg, dec)
			}
			base, _, _ := strings.Cut(dec, ";")
			if base == "." || base == ".." || (base == "" && (dec != "" || i < len(segs)-1)) {
				t.Fatalf("path %q: segment %q reads as %q, a dot or empty segment", path, seg, dec)
			}
		}
	}
}
