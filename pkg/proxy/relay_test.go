package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The egress's relay does what the ingress's ReverseProxy does: no Go
// User-Agent of its own, hop-by-hop headers dropped both ways, trailers
// (announced and not) passed on, a stream flushed event by event.
func TestRelay(t *testing.T) {
	checkLeaks(t)
	type seenReq struct {
		ua, hop string
		hasUA   bool
	}
	seen := make(chan seenReq, 1)
	next := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, hasUA := r.Header["User-Agent"]
		seen <- seenReq{ua: r.Header.Get("User-Agent"), hop: r.Header.Get("X-Hop"), hasUA: hasUA}
		if r.URL.Path == "/base/v1/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("data: 1\n\n"))
			http.NewResponseController(w).Flush()
			<-next // the client has the first event before the second is sent
			w.Write([]byte("data: 2\n\n"))
			return
		}
		w.Header().Set("Connection", "X-Up-Hop")
		w.Header().Set("X-Up-Hop", "1")
		w.Header().Set("Trailer", "X-Announced")
		w.Write([]byte("body"))
		w.Header().Set("X-Announced", "a")
		w.Header().Set(http.TrailerPrefix+"X-Late", "b")
	})
	m := newMeshPair(t, up.URL, 1<<20)

	req, _ := http.NewRequestWithContext(t.Context(), "POST", m.ingress.URL+"/openai/v1/x", strings.NewReader("{}"))
	req.Header["User-Agent"] = nil // the client sends none
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "body" {
		t.Fatalf("body %q, %v", b, err)
	}
	if s := recv(t, seen, 5*time.Second, "the provider"); s.ua != "" || s.hop != "" {
		t.Errorf("the provider saw User-Agent %q (present %v), X-Hop %q", s.ua, s.hasUA, s.hop)
	}
	if resp.Header.Get("X-Up-Hop") != "" {
		t.Errorf("a hop-by-hop header of the provider reached the client: %v", resp.Header)
	}
	if resp.Trailer.Get("X-Announced") != "a" || resp.Trailer.Get("X-Late") != "b" {
		t.Errorf("trailers %v", resp.Trailer)
	}

	resp, err = m.client.Get(m.ingress.URL + "/openai/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	recv(t, seen, 5*time.Second, "the provider")
	first := make([]byte, len("data: 1\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: 1\n\n" {
		t.Fatalf("first event %q, %v", first, err)
	}
	close(next)
	if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "data: 2\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// A small answer of known length is sent whole through the tunnel, so one
// that breaks off before its end never reached the ingress: the client gets
// a clean 502, not a truncated body.
func TestTunnelledShortAnswer(t *testing.T) {
	checkLeaks(t)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.Write([]byte("hello"))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	})
	up.Config.ErrorLog = quietLog()
	m := newMeshPair(t, up.URL, 0)
	resp, err := m.client.Get(m.ingress.URL + "/openai/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Mesh-Error") != "upstream_unreachable" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%d %q: %q", resp.StatusCode, resp.Header.Get("X-Mesh-Error"), b)
	}
}
