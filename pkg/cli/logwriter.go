package cli

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logFlushDelay bounds how long a log line waits in the buffer.
const logFlushDelay = 100 * time.Millisecond

// logBufferSize is the buffer of the node's log; a fuller one is written at once.
const logBufferSize = 32 << 10

// logWriter buffers the node's log: a busy node writes one access-log line
// per request, and a write(2) for each cost a few microseconds of the
// request's CPU. A line waits at most logFlushDelay; Close writes the rest.
type logWriter struct {
	mu    sync.Mutex
	buf   *bufio.Writer
	timer *time.Timer // flushes the buffer logFlushDelay after its first line
	armed bool
}

func newLogWriter(w io.Writer) *logWriter {
	lw := &logWriter{buf: bufio.NewWriterSize(w, logBufferSize)}
	lw.timer = time.AfterFunc(time.Hour, lw.flush)
	lw.timer.Stop()
	return lw
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.buf.Buffered() > 0 && !w.armed {
		w.armed = true
		w.timer.Reset(logFlushDelay)
	}
	return n, err
}

func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	w.buf.Flush()
}

// Close writes what is buffered. Lines written after it are still written,
// within logFlushDelay.
func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
	w.armed = false
	return w.buf.Flush()
}
