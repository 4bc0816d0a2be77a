package fakeprovider

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// maxJSONBody caps the bodies the generating routes hold in memory.
const maxJSONBody = 64 << 20

var errBodyTooLarge = errors.New("request body too large")

// exchange is one request being answered.
type exchange struct {
	p  *Provider
	w  http.ResponseWriter
	r  *http.Request
	rc *http.ResponseController

	body       []byte // only for routes that decode JSON
	bodyBytes  int64
	bodySHA256 string

	gone bool // the client went away; counted once in Stats.Canceled
}

// readBody reads the whole body, hashing as it goes. Only JSON bodies are
// kept, up to maxJSONBody; others are streamed through the hash.
func (x *exchange) readBody(keep bool) error {
	h := sha256.New()
	defer func() { x.bodySHA256 = hex.EncodeToString(h.Sum(nil)) }()
	if x.r.Body == nil {
		return nil
	}
	var err error
	if !keep {
		x.bodyBytes, err = io.Copy(h, x.r.Body)
		return err
	}
	var buf bytes.Buffer
	x.bodyBytes, err = io.Copy(io.MultiWriter(&buf, h), io.LimitReader(x.r.Body, maxJSONBody+1))
	if err != nil {
		return err
	}
	if x.bodyBytes > maxJSONBody {
		return errBodyTooLarge
	}
	x.body = buf.Bytes()
	return nil
}

// fail answers a body that could not be read.
func (x *exchange) fail(d dialect, err error) {
	if errors.Is(err, errBodyTooLarge) {
		d.writeError(x.w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if x.r.Context().Err() != nil {
		x.cancel()
		return
	}
	d.writeError(x.w, http.StatusBadRequest, "reading request body: "+err.Error())
}

// cancel notes that the client went away before the answer was complete.
func (x *exchange) cancel() {
	if !x.gone {
		x.gone = true
		x.p.canceled()
	}
}

// wait pauses for d unless the request context ends first; it reports
// whether the handler should go on.
func (x *exchange) wait(d time.Duration) bool {
	ctx := x.r.Context()
	if ctx.Err() != nil {
		x.cancel()
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		x.cancel()
		return false
	case <-t.C:
		return true
	}
}

// write sends b and flushes it; it reports whether the client still listens.
func (x *exchange) write(b []byte) bool {
	if _, err := x.w.Write(b); err != nil {
		x.cancel()
		return false
	}
	return x.flush()
}

func (x *exchange) flush() bool {
	if err := x.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		x.cancel()
		return false
	}
	return true
}

// abort breaks the response so the client sees an error, never a clean end.
func (x *exchange) abort() {
	x.flush()
	panic(http.ErrAbortHandler)
}

// allow answers 405 unless the request uses method.
func (x *exchange) allow(d dialect, method string) bool {
	if x.r.Method == method {
		return true
	}
	x.w.Header().Set("Allow", method)
	d.writeError(x.w, http.StatusMethodNotAllowed, "method "+x.r.Method+" not allowed")
	return false
}

// decode parses the JSON body into v, answering 400 if it is not JSON.
func (x *exchange) decode(d dialect, v any) bool {
	if err := json.Unmarshal(x.body, v); err != nil {
		d.writeError(x.w, http.StatusBadRequest, "request body is not valid JSON: "+err.Error())
		return false
	}
	return true
}

// control reads the X-Fake-* headers, answering 400 if one is malformed.
func (x *exchange) control(d dialect) (control, bool) {
	c, err := parseControl(x.r.Header)
	if err != nil {
		d.writeError(x.w, http.StatusBadRequest, err.Error())
		return c, false
	}
	return c, true
}

// prelude applies the header delay and the status override; it reports
// whether the route should go on to generate.
func (x *exchange) prelude(d dialect, c control) bool {
	if !x.wait(c.headerDelay) {
		return false
	}
	if c.status != 0 && c.status != http.StatusOK {
		d.writeError(x.w, c.status, fmt.Sprintf("fake provider: status %d requested by %s", c.status, HeaderStatus))
		return false
	}
	return true
}

// pace waits as long as streaming c.chunks chunks would, for non-streaming
// answers.
func (x *exchange) pace(c control) bool {
	for range c.chunks {
		if !x.wait(c.delay) {
			return false
		}
	}
	return true
}

// beforeChunk aborts once the fail-after budget is spent, then waits the
// delay that precedes chunk i.
func (x *exchange) beforeChunk(c control, i int) bool {
	if c.failAfter >= 0 && i >= c.failAfter {
		x.abort()
	}
	return x.wait(c.delay)
}

// beforeEnd aborts a stream that was told to fail instead of ending cleanly
// (fail-after not smaller than the number of chunks).
func (x *exchange) beforeEnd(c control) {
	if c.failAfter >= 0 {
		x.abort()
	}
}

// finish writes a non-streaming JSON answer, or half of it followed by an
// abort when the request asked for a failure.
func (x *exchange) finish(c control, v any) {
	if c.failAfter < 0 {
		writeJSON(x.w, http.StatusOK, v)
		return
	}
	b, _ := json.Marshal(v)
	x.w.Header().Set("Content-Type", "application/json")
	x.w.WriteHeader(http.StatusOK)
	x.write(b[:len(b)/2])
	x.abort()
}

// startSSE sends the head of an event stream at once, so a client sees the
// response begin before the first (possibly delayed) event.
func (x *exchange) startSSE() bool {
	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	x.w.WriteHeader(http.StatusOK)
	return x.flush()
}

// event writes one SSE event (with an event: line when name is set) and
// flushes it.
func (x *exchange) event(name string, v any) bool {
	var b bytes.Buffer
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	b.WriteString("data: ")
	if raw, ok := v.(string); ok {
		b.WriteString(raw)
	} else {
		enc, err := json.Marshal(v)
		if err != nil {
			panic(err) // our own values always encode
		}
		b.Write(enc)
	}
	b.WriteString("\n\n")
	return x.write(b.Bytes())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own values always encode
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// inputTokens is a deterministic stand-in for a token count of the prompt.
func (x *exchange) inputTokens() int { return int(x.bodyBytes/4) + 1 }

// outputTokens counts two tokens per chunk ("chunk", "i").
func outputTokens(chunks int) int { return 2 * chunks }
