package provider

import (
	"net/http"
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
	}
	for k, v := range keep {
		h.Set(k, v)
	}
	drop := []string{
		"Connection", "Keep-Alive", "Te", "Upgrade", "Proxy-Authorization", "Transfer-Encoding",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Real-Ip",
		"Cf-Connecting-Ip", "True-Client-Ip", "Cf-Ipcountry", "Via", "X-Mesh-Hint", "X-Dropme",
	}
	for _, k := range drop {
		h.Set(k, "v")
	}
	h.Set("Connection", "X-Dropme, keep-alive")
	CleanRequestHeader(h)
	for k, v := range keep {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range drop {
		if _, ok := h[k]; ok {
			t.Errorf("%s survived", k)
		}
	}
}

func FuzzCleanRequestHeader(f *testing.F) {
	f.Add("X-Forwarded-For", "1.2.3.4", "x-mesh-hint")
	f.Add("Connection", "X-Secret", "X-Secret")
	f.Fuzz(func(t *testing.T, k, v, named string) {
		h := http.Header{}
		h.Add(k, v)
		h.Add("Connection", named)
		h.Add(named, "1")
		h.Add("Cf-Connecting-Ip", "1.1.1.1")
		CleanRequestHeader(h)
		for key := range h {
			lk := strings.ToLower(key)
			if strings.HasPrefix(lk, "x-forwarded-") || strings.HasPrefix(lk, "x-mesh-") ||
				lk == "connection" || lk == "cf-connecting-ip" || lk == "forwarded" || lk == "via" {
				t.Fatalf("denied header %q survived", key)
			}
		}
	})
}
