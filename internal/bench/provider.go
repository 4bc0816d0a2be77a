package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmesh/llmesh/internal/fakeprovider"
)

// headerReplay asks the provider for its recorded answer (see provider).
const headerReplay = "X-Bench-Replay"

// provider is the fake provider every row calls. A request carrying
// headerReplay gets the fake provider's answer to a chat completion,
// recorded once and replayed byte for byte, without the fake's own work
// (JSON decoding, hashing, recording the request): the closed loop uses it
// so that one CPU can keep a proxy saturated. Every other request reaches
// the fake provider.
type provider struct {
	*fakeprovider.Provider
	URL string

	replay   recording
	replayed atomic.Int64
	srv      *http.Server
	served   chan struct{}
	closing  chan struct{} // closed by Close: idle streams end
}

// recording is one recorded answer.
type recording struct {
	status int
	header http.Header
	body   []byte
}

func startProvider() (*provider, error) {
	p := &provider{Provider: fakeprovider.New(), served: make(chan struct{}), closing: make(chan struct{})}
	rec := httptest.NewRecorder()
	p.Provider.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(chatBody)))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("the fake provider answered a chat completion with %d: %s", rec.Code, rec.Body)
	}
	p.replay = recording{status: rec.Code, header: rec.Header().Clone(), body: rec.Body.Bytes()}
	p.Reset()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if every, err := time.ParseDuration(r.Header.Get(headerIdle)); err == nil && every > 0 {
		p.serveIdle(w, r, every)
		return
	}
	if r.Header.Get(headerReplay) == "" {
		p.Provider.ServeHTTP(w, r)
		return
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	p.replayed.Add(1)
	h := w.Header()
	for k, v := range p.replay.header {
		h[k] = v
	}
	w.WriteHeader(p.replay.status)
	_, _ = w.Write(p.replay.body)
}

// Close stops the server and ends the streams still open.
func (p *provider) Close() {
	close(p.closing)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		_ = p.srv.Close()
	}
	<-p.served
}
