package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmesh/llmesh/pkg/metrics"
	"github.com/llmesh/llmesh/pkg/provider"
)

// Request bodies: how slowly they may arrive (the pace) and how much memory
// the bodies kept for a retry may hold (the replay budget).

// ErrBodyTimeout: the client's request body stopped arriving, or arrived
// more slowly than the minimum rate.
var ErrBodyTimeout = errors.New("request body timed out")

// bodyTimeoutError says which rule cut a body.
type bodyTimeoutError struct{ reason string }

func (e *bodyTimeoutError) Error() string        { return ErrBodyTimeout.Error() + ": " + e.reason }
func (e *bodyTimeoutError) Is(target error) bool { return target == ErrBodyTimeout }

// bodyTimeout is the client's answer to a body cut by its pace, if err is one.
func bodyTimeout(err error) (*provider.Error, bool) {
	var slow *bodyTimeoutError
	if !errors.As(err, &slow) {
		return nil, false
	}
	return &provider.Error{Status: http.StatusRequestTimeout, Code: "request_body_timeout",
		Message: "the request body " + slow.reason + "; send it without pauses"}, true
}

// pace is the rule a request body must keep: a read waits at most idle for
// data, and once idle has passed, the body must average minRate bytes per
// second over the time spent waiting for it. Time the provider or the tunnel
// takes to accept the bytes (backpressure) does not count against the client.
type pace struct {
	idle    time.Duration // 0: no rule at all
	minRate int64         // bytes per second; 0: idle alone
}

// wait is how long the next read may wait, after n bytes that took waited
// to arrive, and whether the rate (rather than idle) sets that bound.
func (p pace) wait(n int64, waited time.Duration) (time.Duration, bool) {
	if p.minRate <= 0 {
		return p.idle, false
	}
	secs := n / p.minRate
	if secs > maxPaceSeconds {
		return p.idle, false // no body is that large; and no overflow
	}
	// The rate allows the grace period plus the time n bytes take at minRate.
	allowed := p.idle + time.Duration(secs)*time.Second + time.Duration(n%p.minRate)*time.Second/time.Duration(p.minRate)
	if rest := allowed - waited; rest < p.idle {
		return rest, true
	}
	return p.idle, false
}

// maxPaceSeconds keeps pace arithmetic far from time.Duration's overflow.
const maxPaceSeconds = 1 << 32

func (p pace) timeout(byRate bool) *bodyTimeoutError {
	if byRate {
		return &bodyTimeoutError{"arrived more slowly than " + strconv.FormatInt(p.minRate, 10) + " bytes/s"}
	}
	return &bodyTimeoutError{"stopped arriving: no data for " + p.idle.String()}
}

// pacedBody enforces a pace on a client's request body. Where the server
// supports read deadlines (client connections, HTTP/1 and HTTP/2) a deadline
// bounds each read; elsewhere (the tunnel's pipe on an egress) a timer
// closes the body under a blocked read.
type pacedBody struct {
	body  io.ReadCloser
	pace  pace
	rc    http.ResponseController // read deadlines, when deadlines is set
	timer *time.Timer             // timer mode (no deadlines)
	// deadlines: the server supports read deadlines; rc is a value, not a
	// pointer, so the request's state takes one allocation.
	deadlines bool
	// lingers: closing the body reads what is left (Go's HTTP/1 server
	// discards up to 256 KiB to reuse the connection); bound that too.
	lingers bool

	n      int64         // bytes read; Read only
	waited time.Duration // time spent in reads; Read only
	eof    atomic.Bool

	byRate atomic.Bool                      // which rule the armed timer enforces
	cut    atomic.Pointer[bodyTimeoutError] // set once the body timed out

	mu     sync.Mutex // orders deadline changes with Close
	closed bool
}

// paceBody wraps r.Body in b so it keeps p, and returns b; nil when r's
// body needs no pace. w is the server's own ResponseWriter. b is the
// caller's zero pacedBody, part of a larger allocation (see served).
func paceBody(b *pacedBody, w http.ResponseWriter, r *http.Request, p pace) *pacedBody {
	if p.idle <= 0 || r.Body == nil || r.Body == http.NoBody || r.GetBody != nil {
		// A served request with GetBody has its body in memory already (the
		// tunnel's whole body, see tunnel.Server): it cannot stall.
		return nil
	}
	b.body, b.pace, b.lingers = r.Body, p, r.ProtoMajor == 1
	b.rc = *http.NewResponseController(w)
	if err := b.rc.SetReadDeadline(time.Time{}); err == nil {
		b.deadlines = true
	} else {
		b.timer = time.AfterFunc(time.Hour, b.expire)
		b.timer.Stop()
	}
	r.Body = b
	return b
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if err := b.timedOut(); err != nil {
		return 0, err
	}
	if b.eof.Load() {
		return b.body.Read(p)
	}
	wait, byRate := b.pace.wait(b.n, b.waited)
	if wait <= 0 {
		return 0, b.fail(byRate)
	}
	start := time.Now()
	b.arm(start.Add(wait), wait, byRate)
	n, err := b.body.Read(p)
	b.disarm()
	b.waited += time.Since(start)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof.Store(true)
	case err != nil && (b.cut.Load() != nil || errors.Is(err, os.ErrDeadlineExceeded)):
		return n, b.fail(byRate)
	}
	return n, err
}

// Close closes the body. On HTTP/1 that may read the rest of the body, which
// the pace bounds as well.
func (b *pacedBody) Close() error {
	b.mu.Lock()
	b.closed = true
	lingers := b.lingers && b.deadlines && !b.eof.Load()
	if lingers {
		deadline := time.Now() // already cut: no more waiting
		if b.cut.Load() == nil {
			deadline = deadline.Add(b.pace.idle)
		}
		b.rc.SetReadDeadline(deadline)
	}
	b.mu.Unlock()
	if b.timer != nil {
		b.timer.Stop()
	}
	err := b.body.Close()
	if lingers {
		// The rest may have been read to its end, and Go's server then
		// watches the connection for a hang-up: with a deadline still set,
		// it would take the expiry for one and cancel the request.
		b.rc.SetReadDeadline(time.Time{})
	}
	return err
}

func (b *pacedBody) arm(deadline time.Time, wait time.Duration, byRate bool) {
	if !b.deadlines {
		b.byRate.Store(byRate)
		b.timer.Reset(wait)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.rc.SetReadDeadline(deadline)
	}
}

// disarm clears the deadline after each read: on HTTP/2 it is a timer that
// would fire between reads, and on HTTP/1 one left after the end of the body
// would cut the server's watch for a hang-up.
func (b *pacedBody) disarm() {
	if !b.deadlines {
		b.timer.Stop()
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.rc.SetReadDeadline(time.Time{})
	}
}

// expire runs when the timer fires: it fails the blocked read by closing
// the body (an io.Pipe on the egress) with the reason.
func (b *pacedBody) expire() {
	err := b.fail(b.byRate.Load())
	if c, ok := b.body.(interface{ CloseWithError(error) error }); ok {
		c.CloseWithError(err)
		return
	}
	b.body.Close()
}

// fail records that the body timed out; the first reason stands.
func (b *pacedBody) fail(byRate bool) error {
	b.cut.CompareAndSwap(nil, b.pace.timeout(byRate))
	return b.cut.Load()
}

// timedOut is the error that cut the body, or nil. A nil *pacedBody (no
// body, or no pace) never times out.
func (b *pacedBody) timedOut() error {
	if b == nil {
		return nil
	}
	if err := b.cut.Load(); err != nil {
		return err
	}
	return nil
}

// replayBudget bounds the memory of bodies kept for a retry, node-wide.
type replayBudget struct {
	limit   int64 // 0: no bound
	used    atomic.Int64
	metrics *metrics.Metrics
}

// reserve takes n bytes of the budget, or reports that they do not fit.
func (b *replayBudget) reserve(n int64) bool {
	if n <= 0 {
		return true
	}
	for {
		used := b.used.Load()
		if b.limit > 0 && used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			b.metrics.AddReplayBytes(n)
			return true
		}
	}
}

func (b *replayBudget) release(n int64) {
	if n > 0 {
		b.used.Add(-n)
		b.metrics.AddReplayBytes(-n)
	}
}
