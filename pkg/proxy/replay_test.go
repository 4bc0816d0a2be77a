package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/tunnel"
)

// partial is a tunnel the egress refuses after the first n body bytes went
// out: a try that read part of the body, then failed before acceptance.
type partial struct{ n int64 }

func (f partial) RoundTrip(req *http.Request) (*http.Response, error) {
	io.CopyN(io.Discard, req.Body, f.n)
	req.Body.Close()
	return nil, &tunnel.NotSentError{Egress: "partial", Err: tunnel.ErrUnavailable}
}

// TestReplayAfterPartialRead: a try that read part of the body is followed
// by one that gets all of it, the first bytes from the copy and the rest
// from the client.
func TestReplayAfterPartialRead(t *testing.T) {
	checkLeaks(t)
	p := newProvider(t, "openai", "https://api.example", provider.StyleOpenAI, 1<<20)
	rec := &recording{}
	rt := &retrier{first: Target{Transport: partial{n: 10}, Tunnel: true, Route: "egress", Egress: "e1"},
		second: Target{Transport: rec, Tunnel: true, Route: "egress", Egress: "e2"}}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 1 << 10})
	body := strings.Repeat("0123456789", 50)
	for _, chunked := range []bool{false, true} {
		rec.bodies = nil
		var r io.Reader = strings.NewReader(body)
		if chunked {
			r = io.MultiReader(r)
		}
		req := httptest.NewRequest("POST", "/openai/v1/x", r)
		if chunked {
			req.ContentLength = -1
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 || len(rec.bodies) != 1 || rec.bodies[0] != body {
			t.Fatalf("chunked=%v: status %d, bodies %q", chunked, w.Code, rec.bodies)
		}
	}
	if used := h.replay.used.Load(); used != 0 {
		t.Errorf("%d bytes of the budget still held", used)
	}
}

// TestKeptBodyStreams: the first try gets the body's first bytes while the
// client is still sending the rest; keeping it for a retry does not wait for
// the end.
func TestKeptBodyStreams(t *testing.T) {
	checkLeaks(t)
	p := newProvider(t, "openai", "https://api.example", provider.StyleOpenAI, 1<<20)
	first := make(chan []byte, 1)
	reading := roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		buf := make([]byte, 5)
		io.ReadFull(req.Body, buf)
		first <- buf
		rest, _ := io.ReadAll(req.Body)
		return &http.Response{StatusCode: 200, Header: http.Header{}, Request: req,
			Body: io.NopCloser(strings.NewReader(string(buf) + string(rest)))}, nil
	})
	rt := &retrier{first: Target{Transport: reading, Tunnel: true, Route: "egress", Egress: "e1"}}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 1 << 20})
	pr, pw := io.Pipe()
	req := httptest.NewRequest("POST", "/openai/v1/x", pr)
	// Larger than SmallBody: a small body is read whole before it is sent.
	rest := "world" + strings.Repeat("x", SmallBody)
	req.ContentLength = int64(len("hello") + len(rest))
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		done <- w
	}()
	io.WriteString(pw, "hello")
	if got := recv(t, first, 5*time.Second, "the first bytes at the transport"); string(got) != "hello" {
		t.Fatalf("first bytes %q", got)
	}
	io.WriteString(pw, rest)
	pw.Close()
	if w := recv(t, done, 5*time.Second, "the response"); w.Body.String() != "hello"+rest {
		t.Fatalf("%d %.20q", w.Code, w.Body.String())
	}
}

// TestBodyPastTheLimitIsNotReplayed: a chunked body that grows past
// retry_body_bytes while it streams cannot be sent again: the first try's
// failure is the answer, and its copy is released at once.
func TestBodyPastTheLimitIsNotReplayed(t *testing.T) {
	checkLeaks(t)
	p := newProvider(t, "openai", "https://api.example", provider.StyleOpenAI, 1<<20)
	rec := &recording{}
	rt := &retrier{first: Target{Transport: &refusing{}, Tunnel: true, Route: "egress", Egress: "e1"},
		second: Target{Transport: rec, Tunnel: true, Route: "egress", Egress: "e2"}}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 100})
	req := httptest.NewRequest("POST", "/openai/v1/x", io.MultiReader(strings.NewReader(strings.Repeat("x", 500))))
	req.ContentLength = -1
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusBadGateway || len(rec.bodies) != 0 {
		t.Fatalf("status %d, %d replays", w.Code, len(rec.bodies))
	}
}

// TestReplayViews: a new view ends the previous one, which then reads
// nothing more; the views read the same bytes in order.
func TestReplayViews(t *testing.T) {
	var budget replayBudget
	req := httptest.NewRequest("POST", "/x", io.MultiReader(strings.NewReader("abcdefghij")))
	req.ContentLength = -1
	b := keepWhileStreaming(req, 100, &budget)
	defer b.close()
	buf := make([]byte, 4)
	if n, _ := req.Body.Read(buf); string(buf[:n]) != "abcd" {
		t.Fatalf("first read %q", buf[:n])
	}
	second, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := req.Body.Read(buf); !errors.Is(err, errReplaced) {
		t.Fatalf("the replaced view read on: %v", err)
	}
	all, err := io.ReadAll(second)
	if err != nil || string(all) != "abcdefghij" {
		t.Fatalf("second view %q, %v", all, err)
	}
	if budget.used.Load() == 0 {
		t.Error("the copy reserved nothing")
	}
	b.close()
	if used := budget.used.Load(); used != 0 {
		t.Errorf("%d bytes reserved after close", used)
	}
}
