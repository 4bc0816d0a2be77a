package floor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// start serves the floor in front of backend, both on loopback.
func start(t *testing.T, backend http.HandlerFunc) string {
	t.Helper()
	be := httptest.NewServer(backend)
	t.Cleanup(be.Close)
	u, _ := url.Parse(be.URL + "/base")
	fl := httptest.NewServer(New(u))
	t.Cleanup(fl.Close)
	return fl.URL
}

func TestForwards(t *testing.T) {
	url := start(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s?%s %s %s", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Accept-Encoding"), b)
	})
	req, _ := http.NewRequest("POST", url+"/v1/chat?x=1", strings.NewReader("hello"))
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.(*http.Transport).Clone().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// The client's Accept-Encoding passes as it is: the floor neither adds
	// its own nor decodes.
	if want := "POST /base/v1/chat?x=1 gzip hello"; string(b) != want {
		t.Errorf("backend saw %q, want %q", b, want)
	}
}

// TestStreamsEvents: each SSE event reaches the client before the backend
// writes the next.
func TestStreamsEvents(t *testing.T) {
	got := make(chan struct{})
	url := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			<-got
		}
	})
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		br.ReadString('\n')
		got <- struct{}{}
	}
}

// TestFullDuplex: the backend answers its head before it has read the
// request body, and the body still arrives whole (golang/go#40747).
func TestFullDuplex(t *testing.T) {
	url := start(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex() // the backend too, or its own server would drain the body first
		w.WriteHeader(http.StatusOK)
		rc.Flush()
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %v", b, err)
	})
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a proxy that is not full duplex hangs here
	defer cancel()
	context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) }) // or Do waits for the body forever
	req, _ := http.NewRequestWithContext(ctx, "POST", url, pr)
	done := make(chan *http.Response)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	pw.Write([]byte("first "))
	resp := <-done // the head came back while the body is still open
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	pw.Write([]byte("second"))
	pw.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := "first second <nil>"; string(b) != want {
		t.Errorf("backend read %q, want %q", b, want)
	}
}

func TestBufferPool(t *testing.T) {
	var p bufferPool
	b := p.Get()
	if len(b) != bufferSize {
		t.Fatalf("len %d", len(b))
	}
	p.Put(b)
}
