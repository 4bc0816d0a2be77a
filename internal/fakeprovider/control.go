package fakeprovider

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Control headers: a test sets them on one request (for example through an
// SDK's per-request header option) to steer the generating routes.
const (
	// HeaderChunks is the number of text chunks to generate (default [DefaultChunks]).
	HeaderChunks = "X-Fake-Chunks"
	// HeaderDelay is a Go duration waited before each chunk.
	HeaderDelay = "X-Fake-Delay"
	// HeaderHeaderDelay is a Go duration waited before anything is written.
	HeaderHeaderDelay = "X-Fake-Header-Delay"
	// HeaderStatus makes the route answer that status with an error body in
	// the route's provider shape (and Retry-After: 1 for 429).
	HeaderStatus = "X-Fake-Status"
	// HeaderFailAfter aborts a stream after that many chunks (or after the
	// last one, if there are fewer), so the client sees a broken response
	// rather than a clean end; a non-streaming answer is cut halfway through
	// its body. The handler panics with [http.ErrAbortHandler], which an
	// [http.Server] turns into a broken connection.
	HeaderFailAfter = "X-Fake-Fail-After"
)

// DefaultChunks is the number of chunks generated without [HeaderChunks].
const DefaultChunks = 3

// maxChunks keeps a typo in a test from generating forever.
const maxChunks = 100_000

// Chunk is the text of chunk i of every generated answer.
func Chunk(i int) string { return "chunk " + strconv.Itoa(i) + " " }

// Text is the full text of an answer of n chunks: what a non-streaming
// response holds and what the chunks of a stream concatenate to.
func Text(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(Chunk(i))
	}
	return b.String()
}

// control is what the X-Fake-* headers asked of one request.
type control struct {
	chunks      int
	delay       time.Duration
	headerDelay time.Duration
	status      int // 0: answer normally
	failAfter   int // -1: never fail
}

func parseControl(h http.Header) (control, error) {
	c := control{chunks: DefaultChunks, failAfter: -1}
	var err error
	if v := h.Get(HeaderChunks); v != "" {
		if c.chunks, err = parseCount(v); err != nil {
			return c, fmt.Errorf("%s: %w", HeaderChunks, err)
		}
	}
	if v := h.Get(HeaderFailAfter); v != "" {
		if c.failAfter, err = parseCount(v); err != nil {
			return c, fmt.Errorf("%s: %w", HeaderFailAfter, err)
		}
	}
	if v := h.Get(HeaderDelay); v != "" {
		if c.delay, err = parseDelay(v); err != nil {
			return c, fmt.Errorf("%s: %w", HeaderDelay, err)
		}
	}
	if v := h.Get(HeaderHeaderDelay); v != "" {
		if c.headerDelay, err = parseDelay(v); err != nil {
			return c, fmt.Errorf("%s: %w", HeaderHeaderDelay, err)
		}
	}
	if v := h.Get(HeaderStatus); v != "" {
		if c.status, err = parseStatus(v); err != nil {
			return c, fmt.Errorf("%s: %w", HeaderStatus, err)
		}
	}
	return c, nil
}

func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > maxChunks {
		return 0, fmt.Errorf("want an integer in [0, %d], got %q", maxChunks, v)
	}
	return n, nil
}

func parseDelay(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a non-negative Go duration, got %q", v)
	}
	return d, nil
}

// parseStatus accepts final statuses only: a 1xx would be sent as an
// informational response and confuse the test.
func parseStatus(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 200 || n > 599 {
		return 0, fmt.Errorf("want a status in [200, 599], got %q", v)
	}
	return n, nil
}
