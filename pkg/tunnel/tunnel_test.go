package tunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/llmesh/llmesh/internal/testio"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// seen is what the egress handler observed of a request.
type seen struct {
	method, path, escapedPath, rawQuery, requestURI string
	header                                          http.Header
	requestID                                       string
	contentLength                                   int64
	body                                            []byte
	bodyErr                                         error
}

func record(r *http.Request) seen {
	body, err := io.ReadAll(r.Body)
	return seen{
		method: r.Method, path: r.URL.Path, escapedPath: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery,
		requestURI: r.RequestURI, header: r.Header.Clone(), requestID: RequestID(r.Context()),
		contentLength: r.ContentLength, body: body, bodyErr: err,
	}
}

func TestRoundTrip(t *testing.T) {
	checkLeaks(t)
	got := make(chan seen, 1)
	respBody := []byte("response body\x00with a NUL and \xff bytes")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- record(r)
		w.Header().Set("Trailer", "X-Sum, X-Count")
		w.Header()["X-Multi"] = []string{"r1", "r2"}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusCreated)
		w.Write(respBody[:5])
		w.Write(respBody[5:])
		// Trailers are set after the body, announced or by prefix.
		w.Header().Set("X-Sum", "abc")
		w.Header().Set("X-Count", "2")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	srv, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})

	reqBody := bytes.Repeat([]byte("request\x00body "), 1000)
	ctx := WithRequestID(t.Context(), "req-123")
	req := newRequest(t, ctx, http.MethodPost, "llmesh://openai/v1/a%20b%2Cc/d?x=1&y=%20z&x=2", bytes.NewReader(reqBody))
	req.Header["X-Multi"] = []string{"1", "2"}
	req.Header.Set("Authorization", "Bearer sk-test")

	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := recv(t, got, 5*time.Second, "the handler")

	if s.method != http.MethodPost {
		t.Errorf("method = %q", s.method)
	}
	if want := "/openai/v1/a%20b%2Cc/d"; s.escapedPath != want {
		t.Errorf("escaped path = %q, want %q", s.escapedPath, want)
	}
	if want := "/openai/v1/a b,c/d"; s.path != want {
		t.Errorf("path = %q, want %q", s.path, want)
	}
	if want := "x=1&y=%20z&x=2"; s.rawQuery != want {
		t.Errorf("raw query = %q, want %q", s.rawQuery, want)
	}
	if want := "/openai/v1/a%20b%2Cc/d?x=1&y=%20z&x=2"; s.requestURI != want {
		t.Errorf("RequestURI = %q, want %q", s.requestURI, want)
	}
	if !slices.Equal(s.header["X-Multi"], []string{"1", "2"}) {
		t.Errorf("X-Multi = %q", s.header["X-Multi"])
	}
	if s.header.Get("Authorization") != "Bearer sk-test" {
		t.Errorf("Authorization = %q", s.header.Get("Authorization"))
	}
	if s.requestID != "req-123" {
		t.Errorf("request id = %q", s.requestID)
	}
	if s.contentLength != int64(len(reqBody)) {
		t.Errorf("content length = %d, want %d", s.contentLength, len(reqBody))
	}
	if s.bodyErr != nil || !bytes.Equal(s.body, reqBody) {
		t.Errorf("request body: %d bytes, err %v; want %d bytes", len(s.body), s.bodyErr, len(reqBody))
	}

	if resp.StatusCode != http.StatusCreated || resp.Status != "201 Created" {
		t.Errorf("status = %d %q", resp.StatusCode, resp.Status)
	}
	if !slices.Equal(resp.Header["X-Multi"], []string{"r1", "r2"}) {
		t.Errorf("response X-Multi = %q", resp.Header["X-Multi"])
	}
	if resp.ContentLength != -1 {
		t.Errorf("response content length = %d, want -1 (unknown)", resp.ContentLength)
	}
	// Announced trailers are known before the body, valueless.
	for _, k := range []string{"X-Sum", "X-Count"} {
		if v, ok := resp.Trailer[k]; !ok || v != nil {
			t.Errorf("before the body, Trailer[%s] = %q, %v; want announced and empty", k, v, ok)
		}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if !bytes.Equal(b, respBody) {
		t.Errorf("response body = %q, want %q", b, respBody)
	}
	for k, want := range map[string]string{"X-Sum": "abc", "X-Count": "2", "X-Late": "late"} {
		if v := resp.Trailer.Get(k); v != want {
			t.Errorf("trailer %s = %q, want %q", k, v, want)
		}
	}
	wait.Until(t, 2*time.Second, "both in-flight counts to return to 0", func() bool {
		return c.InFlight() == 0 && srv.InFlight() == 0
	})
}

// A request without a body, and one whose length is unknown, keep their
// meaning on the egress.
func TestRoundTripBodyLengths(t *testing.T) {
	checkLeaks(t)
	got := make(chan seen, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- record(r)
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	})
	_, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})

	tests := []struct {
		name     string
		body     io.Reader
		wantLen  int64
		wantBody string
	}{
		{"no body", nil, 0, ""},
		{"known length", bytes.NewReader([]byte("hello")), 5, "hello"},
		// http.NewRequest cannot know a plain reader's length: ContentLength
		// is 0 with a non-nil Body, which net/http reads as "unknown".
		{"unknown length", io.MultiReader(bytes.NewReader([]byte("hel")), bytes.NewReader([]byte("lo"))), -1, "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodPut, "llmesh://p/x", tt.body))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "ok" || resp.ContentLength != 2 {
				t.Errorf("response: %q, %v, content length %d", b, err, resp.ContentLength)
			}
			s := recv(t, got, 5*time.Second, "the handler")
			if s.contentLength != tt.wantLen || string(s.body) != tt.wantBody || s.bodyErr != nil {
				t.Errorf("egress saw content length %d, body %q (%v); want %d, %q", s.contentLength, s.body, s.bodyErr, tt.wantLen, tt.wantBody)
			}
		})
	}
}

// The egress writes body frames as the handler writes: a flushed chunk
// reaches the client while the handler is still blocked.
func TestStreamingIsNotBuffered(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: first\n\n"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write([]byte("data: second\n\n"))
	})
	_, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})

	resp := get(t, c, "llmesh://p/stream")

	first := make(chan string, 1)
	go func() {
		b := make([]byte, len("data: first\n\n"))
		n, err := io.ReadFull(resp.Body, b)
		if err != nil {
			first <- "error: " + err.Error()
			return
		}
		first <- string(b[:n])
	}()
	if s := recv(t, first, 5*time.Second, "the first chunk while the handler is blocked"); s != "data: first\n\n" {
		t.Fatalf("first chunk = %q", s)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "data: second\n\n" {
		t.Fatalf("rest = %q, %v", rest, err)
	}
}

// frameSizes is a stream interceptor that records the largest body frame
// seen in each direction.
type frameSizes struct {
	maxUp, maxDown, up, down atomic.Int64
}

func (f *frameSizes) intercept(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &measuredStream{ServerStream: ss, f: f})
}

type measuredStream struct {
	grpc.ServerStream
	f *frameSizes
}

func storeMax(a *atomic.Int64, n int64) {
	for {
		old := a.Load()
		if n <= old || a.CompareAndSwap(old, n) {
			return
		}
	}
}

func (s *measuredStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if fr, ok := m.(*tunnelv1.Frame); ok && err == nil {
		if b := fr.GetBody(); b != nil {
			s.f.up.Add(1)
			storeMax(&s.f.maxUp, int64(len(b)))
		}
	}
	return err
}

func (s *measuredStream) SendMsg(m any) error {
	if fr, ok := m.(*tunnelv1.Frame); ok {
		if b := fr.GetBody(); b != nil {
			s.f.down.Add(1)
			storeMax(&s.f.maxDown, int64(len(b)))
		}
	}
	return s.ServerStream.SendMsg(m)
}

// Large bodies cross intact in both directions, as frames of at most FrameSize.
func TestLargeBodies(t *testing.T) {
	checkLeaks(t)
	const size = 20 << 20
	upload := make([]byte, size)
	download := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(upload)
	rng.Read(download)

	gotSum := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash := sha256.New()
		_, err := io.Copy(hash, r.Body)
		if err != nil {
			gotSum <- "error: " + err.Error()
		} else {
			gotSum <- hex.EncodeToString(hash.Sum(nil))
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		// Large writes: the writer must split them into frames.
		for b := download; len(b) > 0; {
			n := min(len(b), 1<<20+7)
			if _, err := w.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	})
	var sizes frameSizes
	g := grpc.NewServer(grpc.StreamInterceptor(sizes.intercept))
	tunnelv1.RegisterTunnelServer(g, NewServer(ServerConfig{Handler: h}))
	addr := serveGRPC(t, g)
	c := dialEgress(t, addr, DialConfig{})

	resp, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodPost, "llmesh://p/upload", bytes.NewReader(upload)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != size {
		t.Errorf("content length = %d", resp.ContentLength)
	}
	hash := sha256.New()
	n, err := io.Copy(hash, resp.Body)
	if err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	want := sha256.Sum256(download)
	if !bytes.Equal(hash.Sum(nil), want[:]) || n != size {
		t.Errorf("download: %d bytes, sha256 mismatch", n)
	}
	upSum := sha256.Sum256(upload)
	if s := recv(t, gotSum, 5*time.Second, "the upload hash"); s != hex.EncodeToString(upSum[:]) {
		t.Errorf("upload hash = %s", s)
	}

	if m := sizes.maxUp.Load(); m > FrameSize || m == 0 {
		t.Errorf("largest upload frame = %d bytes, want 1..%d", m, FrameSize)
	}
	if m := sizes.maxDown.Load(); m > FrameSize || m == 0 {
		t.Errorf("largest download frame = %d bytes, want 1..%d", m, FrameSize)
	}
	if min := int64(size / FrameSize); sizes.up.Load() < min || sizes.down.Load() < min {
		t.Errorf("frames: %d up, %d down; want at least %d each", sizes.up.Load(), sizes.down.Load(), min)
	}
}

// Cancelling the client's request ends the handler's context.
func TestClientCancelReachesHandler(t *testing.T) {
	checkLeaks(t)
	handlerDone := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
			handlerDone <- r.Context().Err()
		case <-time.After(10 * time.Second):
			handlerDone <- errors.New("handler context never ended")
		}
	})
	srv, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, err := c.RoundTrip(newRequest(t, ctx, http.MethodGet, "llmesh://p/slow", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, len("partial"))
	if _, err := io.ReadFull(resp.Body, b); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := recv(t, handlerDone, 2*time.Second, "the handler's context to end"); err == nil {
		t.Fatal("handler context ended without an error")
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("handler context: %v", err)
	}
	if _, err := resp.Body.Read(b); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
	wait.Until(t, 2*time.Second, "in-flight counts to return to 0", func() bool {
		return c.InFlight() == 0 && srv.InFlight() == 0
	})
}

// A handler that aborts mid-body makes the client's read fail: a truncated
// response must never look complete.
func TestHandlerAbortReachesClient(t *testing.T) {
	checkLeaks(t)
	var codesSeen []codes.Code
	streamEnded := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("some bytes"))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	})
	_, addr := startEgress(t, ServerConfig{Handler: h, OnStream: func(c codes.Code) {
		codesSeen = append(codesSeen, c)
		streamEnded <- struct{}{}
	}})
	c := dialEgress(t, addr, DialConfig{})

	resp := get(t, c, "llmesh://p/x")
	b, err := io.ReadAll(resp.Body)
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read %q, err %v; want an abort error", b, err)
	}
	if !errors.Is(err, ErrAborted) {
		t.Errorf("err = %v, want ErrAborted", err)
	}
	if string(b) != "some bytes" {
		t.Errorf("body before the abort = %q", b)
	}
	recv(t, streamEnded, 2*time.Second, "OnStream")
	if !slices.Equal(codesSeen, []codes.Code{codes.Aborted}) {
		t.Errorf("OnStream codes = %v, want [Aborted]", codesSeen)
	}
}

func TestToken(t *testing.T) {
	checkLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	_, addr := startEgress(t, ServerConfig{Handler: h, Token: "t"})

	tests := []struct {
		token string
		ok    bool
	}{{"", false}, {"wrong", false}, {"tt", false}, {"t", true}}
	for _, tt := range tests {
		t.Run("token="+tt.token, func(t *testing.T) {
			c := dialEgress(t, addr, DialConfig{Token: tt.token})
			body := newCloseTracker(bytes.NewReader([]byte("body")))
			req := newRequest(t, t.Context(), http.MethodPost, "llmesh://p/x", body)
			resp, err := c.RoundTrip(req)
			if !tt.ok {
				if !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("err = %v, want ErrUnauthenticated", err)
				}
				recv(t, body.closed, 2*time.Second, "the request body to be closed")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "ok" {
				t.Fatalf("body %q, err %v", b, err)
			}
		})
	}
}

func TestMaxStreamsAndDraining(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("held"))
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv, addr := startEgress(t, ServerConfig{Handler: h, MaxStreams: 1})
	c := dialEgress(t, addr, DialConfig{})

	held := get(t, c, "llmesh://p/held")
	wait.Until(t, 2*time.Second, "the held exchange to be in flight", func() bool { return srv.InFlight() == 1 })

	// The egress refuses at once, on this connection and on another: the
	// ingress can try elsewhere instead of queueing behind the limit.
	other := dialEgress(t, addr, DialConfig{})
	for name, conn := range map[string]*Conn{"same conn": c, "other conn": other} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err := conn.RoundTrip(newRequest(t, ctx, http.MethodGet, "llmesh://p/second", nil))
		cancel()
		if !errors.Is(err, ErrOverloaded) {
			t.Errorf("%s: second exchange: %v, want ErrOverloaded", name, err)
		}
	}

	close(release)
	if b, err := io.ReadAll(held.Body); err != nil || string(b) != "held" {
		t.Fatalf("held exchange: %q, %v", b, err)
	}
	wait.Until(t, 2*time.Second, "the held exchange to end", func() bool { return srv.InFlight() == 0 })

	srv.SetDraining(true)
	_, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/x", nil))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("while draining: %v, want ErrUnavailable", err)
	}
	srv.SetDraining(false)
	resp, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/x", nil))
	if err != nil {
		t.Fatalf("after draining: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func TestDialClosedPort(t *testing.T) {
	checkLeaks(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	c := dialEgress(t, addr, DialConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	body := newCloseTracker(bytes.NewReader([]byte("body")))
	_, err = c.RoundTrip(newRequest(t, ctx, http.MethodPost, "llmesh://p/x", body))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	recv(t, body.closed, 2*time.Second, "the request body to be closed")
	if c.InFlight() != 0 {
		t.Errorf("in flight = %d after a failed dial", c.InFlight())
	}
	wait.Until(t, 5*time.Second, "the connection to report unusable", func() bool { return !c.Usable() })
}

func TestSchemeMustBeLlmesh(t *testing.T) {
	checkLeaks(t)
	c := dialEgress(t, "127.0.0.1:1", DialConfig{})
	for _, u := range []string{"http://openai/v1/x", "https://openai/v1/x", "/openai/v1/x"} {
		body := newCloseTracker(bytes.NewReader([]byte("x")))
		req := newRequest(t, t.Context(), http.MethodPost, u, body)
		_, err := c.RoundTrip(req)
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", u, err)
		}
		select {
		case <-body.closed:
		default:
			t.Errorf("%s: request body not closed", u)
		}
	}
	if c.InFlight() != 0 {
		t.Errorf("in flight = %d", c.InFlight())
	}
}

// A Conn closed under a request reports the egress unavailable (before the
// stream opened) or the exchange aborted (after), never a cancellation the
// client did not ask for.
func TestClosedConn(t *testing.T) {
	checkLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	_, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})

	resp := get(t, c, "llmesh://p/x")
	if _, err := io.ReadFull(resp.Body, make([]byte, len("partial"))); err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, err := io.ReadAll(resp.Body)
	if !errors.Is(err, ErrAborted) || errors.Is(err, context.Canceled) {
		t.Errorf("read after Close: %v, want ErrAborted", err)
	}

	_, err = c.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/x", nil))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("new exchange: %v, want ErrUnavailable", err)
	}
	if c.Usable() {
		t.Error("a closed conn reports usable")
	}
	if c.InFlight() != 0 {
		t.Errorf("in flight = %d", c.InFlight())
	}
}

// A handler that panics for real aborts the exchange and is logged on the
// server's logger.
func TestHandlerPanic(t *testing.T) {
	checkLeaks(t)
	var logs testio.Buffer
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	_, addr := startEgress(t, ServerConfig{Handler: h, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := dialEgress(t, addr, DialConfig{})
	_, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/x", nil))
	if !errors.Is(err, ErrAborted) {
		t.Errorf("err = %v, want ErrAborted", err)
	}
	if !strings.Contains(logs.String(), "handler panic") || !strings.Contains(logs.String(), "boom") {
		t.Errorf("log = %q", logs.String())
	}
}

// Closing the response body early ends the exchange on both sides.
func TestCloseBodyEarly(t *testing.T) {
	checkLeaks(t)
	handlerDone := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		for r.Context().Err() == nil {
			if _, err := w.Write(make([]byte, 4096)); err != nil {
				return
			}
		}
	})
	srv, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})
	resp := get(t, c, "llmesh://p/endless")
	if _, err := io.ReadFull(resp.Body, make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Error("read after Close succeeded")
	}
	recv(t, handlerDone, 2*time.Second, "the handler to stop")
	wait.Until(t, 2*time.Second, "in-flight counts to return to 0", func() bool {
		return c.InFlight() == 0 && srv.InFlight() == 0
	})
}

// Close from another goroutine unblocks a Read waiting for the egress.
func TestCloseUnblocksRead(t *testing.T) {
	checkLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		<-r.Context().Done()
	})
	_, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})
	resp := get(t, c, "llmesh://p/x")
	readErr := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(make([]byte, 10))
		readErr <- err
	}()
	resp.Body.Close()
	if err := recv(t, readErr, 2*time.Second, "the blocked Read to return"); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Read after Close: %v, want an error", err)
	}
	wait.Until(t, 2*time.Second, "in-flight count to return to 0", func() bool { return c.InFlight() == 0 })
}
