package bench

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestProviderReplay: with the header the answer is the fake provider's,
// byte for byte, without reaching it; without it the fake answers. Over
// HTTPS, a client that trusts the provider's certificate speaks HTTP/2
// with it.
func TestProviderReplay(t *testing.T) {
	for _, kind := range providerKinds {
		t.Run(kind, func(t *testing.T) { testProviderReplay(t, kind) })
	}
}

func testProviderReplay(t *testing.T, kind string) {
	p, err := startProvider(kind)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	c := newClient(4)
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = true // as the proxies' transports
	p.trust(c)
	t.Cleanup(c.CloseIdleConnections)
	wantProto := map[string]int{providerH1: 1, providerH2: 2}[kind]
	get := func(replay bool) (*http.Response, string) {
		req, _ := http.NewRequest("POST", p.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		if replay {
			req.Header.Set(headerReplay, "1")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != wantProto {
			t.Errorf("answered in %s, want HTTP/%d", resp.Proto, wantProto)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	fresh, freshBody := get(false)
	replayed, replayedBody := get(true)
	if p.Stats().Requests != 1 || p.replayed.Load() != 1 {
		t.Errorf("the fake saw %d requests, %d were replayed; want 1 and 1", p.Stats().Requests, p.replayed.Load())
	}
	if replayed.StatusCode != 200 || replayed.Header.Get("Content-Type") != fresh.Header.Get("Content-Type") ||
		replayed.ContentLength != fresh.ContentLength || len(replayedBody) != len(freshBody) {
		t.Errorf("replayed %d %q %d bytes; the fake answered %d %q %d bytes", replayed.StatusCode, replayed.Header.Get("Content-Type"),
			len(replayedBody), fresh.StatusCode, fresh.Header.Get("Content-Type"), len(freshBody))
	}
	if !strings.Contains(replayedBody, `"chat.completion"`) {
		t.Errorf("replayed %q", replayedBody)
	}
}

// TestProviderKind: an unknown -provider fails before anything is built or
// started.
func TestProviderKind(t *testing.T) {
	if _, err := startProvider("h3"); err == nil || !strings.Contains(err.Error(), "h2 or h1") {
		t.Errorf("startProvider(h3) = %v, want an error naming h2 and h1", err)
	}
	err := Run(t.Context(), Options{Go: "false", Root: t.TempDir(), Providers: []string{"h2", "h3"}, Out: io.Discard, Log: io.Discard})
	if err == nil || !strings.Contains(err.Error(), `-provider "h3"`) {
		t.Errorf("Run with -provider h2,h3 = %v, want it refused", err)
	}
}
