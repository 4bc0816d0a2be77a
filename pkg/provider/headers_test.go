package provider

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestCleanRequestHeader(t *testing.T) {
	h := http.Header{}
	keep := map[string]string{
		"Authorization": "Bearer sk-x", "X-Api-Key": "k", "Anthropic-Version": "2023-06-01",
		"Anthropic-Beta": "tools-2024", "Openai-Organization": "org", "Openai-Project": "p",
		"X-Stainless-Lang": "go", "User-Agent": "sdk/1", "Accept": "text/event-stream",
		"Accept-Encoding": "gzip", "Idempotency-Key": "abc", "X-Custom": "1", "Content-Type": "application/json",
		"X_Custom_Thing": "2", "X-Hosted-By": "3", "Http-Referer": "https://app.example", "X-Title": "app",
	}
	for k, v := range keep {
		h[k] = []string{v} // as sent: Set would canonicalise the underscore names differently
	}
	drop := []string{
		"Connection", "Keep-Alive", "Te", "Upgrade", "Proxy-Authorization", "Transfer-Encoding",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Real-Ip",
		"Cf-Connecting-Ip", "True-Client-Ip", "Cf-Ipcountry", "Via", "X-Mesh-Hint", "X-Dropme",
		// '_' read as '-', any case: CGI-style servers see these as the real ones.
		"X_Forwarded_For", "X_forwarded_for", "x_forwarded_host", "X-Forwarded_Proto", "X-Real_IP", "X_REAL_IP",
		"Cf_Connecting_Ip", "True_Client_Ip", "X_Mesh_Hint", "Transfer_Encoding", "Proxy_Authorization", "forwarded",
		// Rewrites of the URL, host or method.
		"X-Original-Url", "X-Rewrite-Url", "X_Original_URL", "X-Original-Host", "X-Host", "X-Forwarded-Server",
		"X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X_HTTP_Method_Override",
		// Other client addresses.
		"X-Forwarded", "Forwarded-For", "X-Originating-Ip", "X-Remote-Ip", "X-Remote-Addr", "Client-Ip",
		"Fly-Client-Ip", "X-Appengine-User-Ip",
	}
	for _, k := range drop {
		h[k] = []string{"v"}
	}
	h.Set("Connection", "X-Dropme, keep-alive")
	CleanRequestHeader(h)
	for k, v := range keep {
		if got := h[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range drop {
		if _, ok := h[k]; ok {
			t.Errorf("%s survived", k)
		}
	}
}

// removedInTest are, normalised (lower case, '_' read as '-'), the headers
// that must never reach a provider, whatever their spelling.
var removedInTest = []string{
	"connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
	"trailer", "transfer-encoding", "upgrade",
	"forwarded", "via", "x-real-ip", "cf-connecting-ip", "true-client-ip", "cf-ipcountry", "x-client-ip",
	"x-original-url", "x-rewrite-url", "x-original-host", "x-host",
	"x-http-method-override", "x-http-method", "x-method-override",
}

func FuzzCleanRequestHeader(f *testing.F) {
	f.Add("X-Forwarded-For", "1.2.3.4", "x-mesh-hint")
	f.Add("Connection", "X-Secret", "X-Secret")
	f.Add("X_Forwarded_For", "1.2.3.4", "X-Real_IP")
	f.Add("x-http-method_override", "DELETE", "X_Original_URL")
	f.Fuzz(func(t *testing.T, k, v, named string) {
		h := http.Header{}
		h.Add(k, v)
		h[k] = append(h[k], v) // also as sent, not canonicalised
		h.Add("Connection", named)
		h.Add(named, "1")
		h[named] = append(h[named], "1")
		h.Add("Cf-Connecting-Ip", "1.1.1.1")
		CleanRequestHeader(h)
		for key := range h {
			n := strings.ReplaceAll(strings.ToLower(key), "_", "-")
			if strings.HasPrefix(n, "x-forwarded-") || strings.HasPrefix(n, "x-mesh-") || slices.Contains(removedInTest, n) {
				t.Fatalf("denied header %q survived", key)
			}
		}
	})
}

// BenchmarkCleanRequestHeader: a typical SDK request's headers, as the
// server hands them to the proxy.
func BenchmarkCleanRequestHeader(b *testing.B) {
	base := http.Header{
		"Authorization": {"Bearer sk-x"}, "Content-Type": {"application/json"}, "Accept": {"application/json"},
		"User-Agent": {"OpenAI/Python 1.50.0"}, "X-Stainless-Lang": {"python"}, "X-Stainless-Os": {"Linux"},
		"X-Stainless-Arch": {"x64"}, "X-Stainless-Runtime": {"CPython"}, "X-Stainless-Package-Version": {"1.50.0"},
		"X-Stainless-Retry-Count": {"0"}, "Accept-Encoding": {"gzip, deflate"}, "Connection": {"keep-alive"},
		"X-Forwarded-For": {"10.0.0.1"}, "Content-Length": {"120"},
	}
	h := make(http.Header, len(base))
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		for k, v := range base {
			h[k] = v
		}
		CleanRequestHeader(h)
	}
}
