package proxy

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// NewTransport returns the transport that calls providers. It never
// decompresses (bytes and Content-Encoding pass end to end, and SSE is not
// released in bursts) and waits headerTimeout for response headers: long,
// because reasoning models can think for minutes before the first byte.
func NewTransport(dialTimeout, headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
		// Keep as many idle connections to a provider as streams were
		// open at once: with fewer, a load of long streams makes a new
		// connection (and TLS handshake) for most requests. HTTP/2
		// providers need one or a few anyway.
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// copyBufferSize suits SSE, where each read is an event of a few hundred
// bytes: a small buffer keeps memory per long-lived stream low.
const copyBufferSize = 8 << 10

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

var copyBuffers = &bufferPool{}

// statusWriter remembers the status and size of a response for logs and
// metrics. Unwrap keeps http.ResponseController (flush, full duplex) working.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	// When the response head and the first body byte went out, for the
	// time-to-first-byte and overhead histograms.
	headAt, firstByteAt time.Time
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		w.headAt = time.Now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 || w.firstByteAt.IsZero() && len(p) > 0 {
		now := time.Now()
		if w.status == 0 {
			w.status, w.headAt = http.StatusOK, now
		}
		if len(p) > 0 {
			w.firstByteAt = now
		}
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
