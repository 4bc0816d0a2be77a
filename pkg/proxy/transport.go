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
		// Each connection holds its read buffer for its life, busy or
		// idle: 2 KiB, not 4, holds a provider's response head; longer
		// heads and bodies read on (body reads of a copy buffer's size
		// bypass it). The write buffer stays 4 KiB: a request's head
		// and a small body leave in one write.
		ReadBufferSize: upstreamReadBuffer,
	}
}

// upstreamReadBuffer is the read buffer of each provider connection.
const upstreamReadBuffer = 2 << 10

// Copy buffers: the ReverseProxy holds one for as long as it copies a
// response, so a stream open for an hour holds its buffer for an hour. The
// size is picked per response, once its head is known (see bufferFor):
// small for streams, whose reads are events of a few hundred bytes, large
// for long bodies, whose bytes then cross in fewer reads and writes.
const (
	streamBufferSize = 4 << 10  // unknown length: SSE and other streams
	copyBufferSize   = 8 << 10  // known length, short
	bulkBufferSize   = 32 << 10 // known length of bulkBufferSize or more
)

// bufferPool holds copy buffers of one size.
type bufferPool struct {
	size int
	p    sync.Pool
}

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, b.size)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

var (
	streamBuffers = &bufferPool{size: streamBufferSize}
	copyBuffers   = &bufferPool{size: copyBufferSize}
	bulkBuffers   = &bufferPool{size: bulkBufferSize}
)

// bufferFor is the pool of the copy buffer for a response of this length
// (-1: unknown, as a stream's).
func bufferFor(contentLength int64) *bufferPool {
	switch {
	case contentLength < 0:
		return streamBuffers
	case contentLength >= bulkBufferSize:
		return bulkBuffers
	default:
		return copyBuffers
	}
}

// poolOf is the pool a buffer of this length came from; nil for a length
// no pool hands out.
func poolOf(buf []byte) *bufferPool {
	for _, p := range [...]*bufferPool{streamBuffers, copyBuffers, bulkBuffers} {
		if len(buf) == p.size {
			return p
		}
	}
	return nil
}

// exchangeBuffers is the ReverseProxy's BufferPool for one exchange: Get
// is called once the response head is in (ModifyResponse has run), so it
// can pick the buffer's size by the response.
type exchangeBuffers struct{ contentLength int64 }

func (b *exchangeBuffers) Get() []byte { return bufferFor(b.contentLength).Get() }

func (b *exchangeBuffers) Put(buf []byte) {
	if p := poolOf(buf); p != nil {
		p.Put(buf)
	}
}

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
