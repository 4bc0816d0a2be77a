package e2e

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
)

// load is client traffic that runs while a test restarts or kills nodes:
// workers send requests one after the other until finish, and every
// request counts, sent or failed.
type load struct {
	sent, failed atomic.Int64
	errs         sync.Map // the distinct failures, by text
	stop         chan struct{}
	stopOnce     sync.Once
	wg           sync.WaitGroup
}

// startLoad runs workers goroutines until finish or the end of the test;
// worker w sends its i-th request with send(w, i), which returns why the
// request failed, or nil.
func startLoad(t testing.TB, workers int, send func(w, i int) error) *load {
	l := &load{stop: make(chan struct{})}
	t.Cleanup(l.halt)
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.sent.Add(1)
				if err := send(w, i); err != nil {
					l.failed.Add(1)
					l.errs.Store(err.Error(), true)
				}
			}
		})
	}
	return l
}

// progress waits until n more requests have been sent.
func (l *load) progress(t testing.TB, n int64, timeout time.Duration) {
	t.Helper()
	target := l.sent.Load() + n
	wait.For(t, timeout, func() error {
		if got := l.sent.Load(); got < target {
			return fmt.Errorf("%d requests sent, waiting for %d", got, target)
		}
		return nil
	})
}

// finish stops the workers once their requests have ended, fails t if any
// request failed, and returns how many were sent.
func (l *load) finish(t testing.TB) int64 {
	t.Helper()
	l.halt()
	if n := l.failed.Load(); n > 0 {
		var list []string
		l.errs.Range(func(k, _ any) bool { list = append(list, k.(string)); return true })
		slices.Sort(list)
		t.Fatalf("%d of %d requests failed: %q", n, l.sent.Load(), list)
	}
	return l.sent.Load()
}

// halt stops the workers and waits for their last requests to end.
func (l *load) halt() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}
