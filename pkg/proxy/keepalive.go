package proxy

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// keepaliveComment is an SSE comment line: parsers ignore it, proxies and
// NATs see traffic.
var keepaliveComment = []byte(": keep-alive\n\n")

// keepaliveWriter writes an SSE comment to the client after `every` of
// silence on a text/event-stream response, so a proxy in front that drops
// idle connections does not cut a model that thinks for minutes. It only
// writes between events (after a blank line), never inside one.
type keepaliveWriter struct {
	http.ResponseWriter
	every time.Duration

	mu       sync.Mutex
	sse      bool
	boundary bool // the bytes written so far end an event
	last     [2]byte
	timer    *time.Timer
	stopped  bool
}

func newKeepaliveWriter(w http.ResponseWriter, every time.Duration) *keepaliveWriter {
	return &keepaliveWriter{ResponseWriter: w, every: every, boundary: true}
}

func (k *keepaliveWriter) WriteHeader(code int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if code >= 200 && strings.HasPrefix(k.Header().Get("Content-Type"), "text/event-stream") && !k.stopped {
		k.sse = true
		k.timer = time.AfterFunc(k.every, k.tick)
	}
	k.ResponseWriter.WriteHeader(code)
}

func (k *keepaliveWriter) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n, err := k.ResponseWriter.Write(p)
	if k.sse && n > 0 {
		if n >= 2 {
			k.last = [2]byte{p[n-2], p[n-1]}
		} else {
			k.last = [2]byte{k.last[1], p[0]}
		}
		k.boundary = k.last == [2]byte{'\n', '\n'}
		if k.timer != nil {
			k.timer.Reset(k.every)
		}
	}
	return n, err
}

func (k *keepaliveWriter) tick() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	if k.boundary {
		if _, err := k.ResponseWriter.Write(keepaliveComment); err != nil {
			return
		}
		http.NewResponseController(k.ResponseWriter).Flush()
	}
	k.timer.Reset(k.every)
}

func (k *keepaliveWriter) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	if k.timer != nil {
		k.timer.Stop()
	}
}

// FlushError serialises flushes with the keep-alive writes: the reverse
// proxy flushes from a timer goroutine of its own.
func (k *keepaliveWriter) FlushError() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return http.NewResponseController(k.ResponseWriter).Flush()
}

func (k *keepaliveWriter) Unwrap() http.ResponseWriter { return k.ResponseWriter }
