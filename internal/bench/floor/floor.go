// Package floor is the Go floor of make bench: the least a reverse proxy
// written with the standard library costs. It is httputil.ReverseProxy as
// its documentation and the known traps advise, and nothing more: full
// duplex (golang/go#40747), 32 KiB copy buffers from a sync.Pool, the
// provider's bytes untouched (DisableCompression), and enough idle
// connections that no request waits for a new one. llmesh's CPU, latency
// and memory are read against it.
package floor

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// MaxIdlePerHost keeps a connection to the target for every stream of the
// largest benchmark phase, with room to spare.
const MaxIdlePerHost = 4096

// New returns a proxy that sends every request to target, path and query
// appended to target's.
func New(target *url.URL) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite:    func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:  newTransport(),
		BufferPool: &bufferPool{},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// HTTP/1 would otherwise close the request body once the response
		// head is written; the error only means HTTP/2, which is full duplex.
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	})
}

func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:        (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		DisableCompression: true,
		// HTTP/2 to an HTTPS target that offers it, as net/http's
		// default transport does (a custom dialer turns it off).
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: MaxIdlePerHost,
		IdleConnTimeout:     90 * time.Second,
	}
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{ p sync.Pool }

const bufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, bufferSize)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
