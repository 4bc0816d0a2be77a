package bench

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestProviderReplay: with the header the answer is the fake provider's,
// byte for byte, without reaching it; without it the fake answers.
func TestProviderReplay(t *testing.T) {
	p, err := startProvider()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	c := newClient(4)
	t.Cleanup(c.CloseIdleConnections)
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
