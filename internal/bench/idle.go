package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Idle streams: what a node holds per open stream that moves a byte only
// now and then (a model thinking, a client that keeps a stream open for
// hours), read as the growth of each process's RSS divided by the streams.

// headerIdle asks the bench provider for an idle stream: an SSE head and
// one event at once, then a two-byte SSE comment every so often (the
// header's value, a Go duration), until the client leaves.
const headerIdle = "X-Bench-Idle"

// idlePlan is the idle-streams phase: n streams open at once, each sent a
// comment every `every`, held for settle once all are open before RSS is
// read. opening bounds the streams being opened at a time.
type idlePlan struct {
	n       int
	every   time.Duration
	settle  time.Duration
	opening int
}

// idleComment is what an idle stream carries now and then: an SSE comment
// line, which parsers ignore.
var idleComment = []byte(":\n")

// serveIdle answers an idle stream (see headerIdle).
func (p *provider) serveIdle(w http.ResponseWriter, r *http.Request, every time.Duration) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("data: {}\n\n")); err != nil || rc.Flush() != nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-p.closing:
			return
		case <-t.C:
			if _, err := w.Write(idleComment); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// idleStreams opens p.n idle streams, calls measure once every one has its
// first event and p.settle has passed, then closes them all. It returns how
// many failed to open or broke before the end.
func idleStreams(ctx context.Context, c *http.Client, url string, p idlePlan, measure func()) (failed int) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		opened  sync.WaitGroup
		errs    atomic.Int64
		closing atomic.Bool // past this, a stream's end is ours, not a failure
	)
	slots := make(chan struct{}, p.opening)
	opened.Add(p.n)
	for range p.n {
		slots <- struct{}{}
		wg.Go(func() {
			once := sync.OnceFunc(func() { <-slots; opened.Done() })
			defer once()
			if err := idleStream(ctx, c, url, p.every, once); err != nil && !closing.Load() {
				errs.Add(1)
			}
		})
	}
	opened.Wait()
	select {
	case <-time.After(p.settle):
		measure()
	case <-ctx.Done():
	}
	closing.Store(true)
	cancel()
	wg.Wait()
	return int(errs.Load())
}

// idleStream holds one idle stream open until ctx ends, calling open once
// its first event has arrived (or it failed).
func idleStream(ctx context.Context, c *http.Client, url string, every time.Duration, open func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(streamBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerIdle, every.String())
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 64)
	if _, err := br.ReadSlice('\n'); err != nil {
		return err
	}
	open()
	for {
		if _, err := br.ReadSlice('\n'); err != nil && err != bufio.ErrBufferFull {
			return err
		}
	}
}

// perStream is each process's RSS growth from base to now, divided by n.
func perStream(base, now []int64, n int) []int64 {
	out := make([]int64, len(now))
	for i := range now {
		out[i] = (now[i] - base[i]) / int64(n)
	}
	return out
}
