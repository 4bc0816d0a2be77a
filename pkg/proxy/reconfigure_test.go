package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReconfigure: a new config applies to the requests that start after
// it (access keys, providers, limits), while a request in flight finishes
// with the one it started with; in-flight counts carry over.
func TestReconfigure(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		if r.URL.Path == "/v1/slow" {
			<-release
		}
		io.WriteString(w, "data: "+r.Header.Get("Authorization")+"\n\n")
	})
	cfg := Config{Providers: managedRegistry(t, up.URL), Router: routeTo(Target{Route: "direct"}),
		AccessKeys: []AccessKey{{Key: "ak-old"}}, Transport: NewTransport(time.Second, 10*time.Second)}
	t.Cleanup(cfg.Transport.(*http.Transport).CloseIdleConnections)
	h := newHandler(t, cfg)
	srv, client := front(t, h)
	t.Cleanup(done) // before the servers close, which waits for the slow request
	get := func(path, key string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		return client.Do(req)
	}

	slow, err := get("/openai/v1/slow", "ak-old")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	first := make([]byte, len("data: first\n\n"))
	if _, err := io.ReadFull(slow.Body, first); err != nil {
		t.Fatal(err)
	}

	// New keys, one provider fewer, and a cap of one request in flight,
	// which the slow request already fills.
	next := cfg
	next.AccessKeys = []AccessKey{{Key: "ak-new"}}
	next.Providers = managedRegistry(t, up.URL)
	next.MaxInFlight = 1
	h.Reconfigure(next)
	resp, err := get("/openai/v1/models", "ak-new")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(HeaderError) != "over_capacity" {
		t.Fatalf("a request past the new cap: %d %q", resp.StatusCode, resp.Header.Get(HeaderError))
	}
	next.MaxInFlight = 0
	h.Reconfigure(next)
	for key, want := range map[string]int{"ak-new": 200, "ak-old": 403} {
		resp, err := get("/openai/v1/models", key)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s after the reload: %d, want %d", key, resp.StatusCode, want)
		}
	}

	done()
	rest, err := io.ReadAll(slow.Body)
	if err != nil {
		t.Fatalf("the request in flight broke: %v", err)
	}
	if !strings.Contains(string(rest), "Bearer sk-real-openai") {
		t.Errorf("the request in flight ended with %q", rest)
	}
}
