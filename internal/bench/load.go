package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmesh/llmesh/internal/fakeprovider"
)

// The request bodies: a short chat, answered with a small JSON body or, with
// stream set, with SSE events (the fake provider's X-Fake-* headers set how
// many and how far apart).
const (
	chatBody   = `{"model":"fake-gpt","messages":[{"role":"user","content":"hello"}]}`
	streamBody = `{"model":"fake-gpt","stream":true,"messages":[{"role":"user","content":"hello"}]}`
)

// newClient is the load generator's HTTP/1.1 client: one keep-alive
// connection per concurrent request, up to conns, never a proxy from the
// environment, and the provider's bytes as they are.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}}
}

// chat sends one non-streamed chat completion and reads the whole answer.
// With replay set, the provider answers from its recording.
func chat(ctx context.Context, c *http.Client, url string, replay bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(chatBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if replay {
		req.Header.Set(headerReplay, "1")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n == 0 {
		return fmt.Errorf("status %d, %d bytes", resp.StatusCode, n)
	}
	return nil
}

// closedLoop runs workers that each send the next request as soon as the
// last one was answered, for d. It returns the requests answered and failed.
func closedLoop(ctx context.Context, workers int, d time.Duration, do func(context.Context) error) (ok, failed int) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var good, bad int
			for ctx.Err() == nil {
				if err := do(ctx); err == nil {
					good++
				} else if ctx.Err() == nil { // the deadline cuts the last one short
					bad++
				}
			}
			mu.Lock()
			ok, failed = ok+good, failed+bad
			mu.Unlock()
		})
	}
	wg.Wait()
	return ok, failed
}

// openLoop sends rate requests a second for d, each at its scheduled time
// in a goroutine of its own, so a slow answer never delays the next send.
// Each latency is counted from the scheduled send time, not from when the
// request actually left: a load generator that falls behind still charges
// its lateness to the system under test (no coordinated omission).
func openLoop(ctx context.Context, rate int, d time.Duration, do func(context.Context) error) ([]time.Duration, int) {
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	rec := &recorder{samples: make([]time.Duration, 0, n)}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			if err := do(ctx); err != nil {
				rec.fail()
				return
			}
			rec.add(time.Since(at))
		})
	}
	wg.Wait()
	return rec.take()
}

// streamPlan is one streaming phase: n clients each open streams of events
// SSE events, delay apart, one after another.
type streamPlan struct {
	n      int
	events int
	delay  time.Duration
	run    time.Duration // how long streams keep being opened after the ramp
}

// length is how long one stream lasts: the fake provider waits delay before
// each event.
func (p streamPlan) length() time.Duration { return time.Duration(p.events) * p.delay }

// streamResult is what a streaming phase measured, over the streams opened
// after the ramp, when all n were open.
type streamResult struct {
	TTFB    Summary       // request sent → response head received
	MaxGap  time.Duration // longest silence between two events of a stream (the head counts as the first)
	Streams int           // streams measured
	Errors  int           // streams that failed, measured or not
}

// streams holds p.n streams open: client i starts at i/n of a stream's
// length, so that once the first stream of the last client has begun (the
// ramp) n streams are open at any time, their events spread evenly rather
// than in lockstep; each client then opens its next stream as soon as one
// ends, until p.run has passed.
func streams(ctx context.Context, c *http.Client, url string, p streamPlan) streamResult {
	ttfb, gaps := &recorder{}, &recorder{}
	ramp := p.length()
	start := time.Now()
	measureFrom, stop := start.Add(ramp), start.Add(ramp+p.run)
	var wg sync.WaitGroup
	for i := range p.n {
		wg.Go(func() {
			at := start.Add(ramp * time.Duration(i) / time.Duration(p.n))
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
				return
			}
			for ctx.Err() == nil && time.Now().Before(stop) {
				measured := !time.Now().Before(measureFrom)
				head, gap, err := stream(ctx, c, url, p)
				switch {
				case err != nil:
					ttfb.fail()
				case measured:
					ttfb.add(head)
					gaps.add(gap)
				}
			}
		})
	}
	wg.Wait()
	heads, failed := ttfb.take()
	longest, _ := gaps.take()
	res := streamResult{TTFB: Summarize(heads), Streams: len(heads), Errors: failed}
	res.MaxGap = Summarize(longest).Max
	return res
}

// stream runs one SSE stream to its end. It returns the time to the
// response head and the longest wait for an event.
func stream(ctx context.Context, c *http.Client, url string, p streamPlan) (head, gap time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(streamBody))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(fakeprovider.HeaderChunks, strconv.Itoa(p.events))
	req.Header.Set(fakeprovider.HeaderDelay, p.delay.String())
	sent := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	last := time.Now()
	head = last.Sub(sent)
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	gap, err = readEvents(resp.Body, last)
	return head, gap, err
}

// errNoDone is a stream that ended without its data: [DONE] event.
var errNoDone = errors.New("stream ended before data: [DONE]")

// readEvents reads SSE lines until data: [DONE] and returns the longest
// time between two data lines, counting from since.
func readEvents(body io.Reader, since time.Time) (time.Duration, error) {
	br := bufio.NewReaderSize(body, 4096)
	var gap time.Duration
	last := since
	for {
		line, err := br.ReadSlice('\n')
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			now := time.Now()
			gap = max(gap, now.Sub(last))
			last = now
			if string(bytes.TrimSpace(data)) == "[DONE]" {
				return gap, nil
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return gap, errNoDone
		case err != nil && !errors.Is(err, bufio.ErrBufferFull):
			return gap, err
		}
	}
}
