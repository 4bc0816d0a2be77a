package bench

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Summary is what a table shows of a set of latencies.
type Summary struct {
	N                   int
	P50, P99, P999, Max time.Duration
}

// Summarize sorts d in place and reads its quantiles.
func Summarize(d []time.Duration) Summary {
	slices.Sort(d)
	s := Summary{N: len(d)}
	if len(d) == 0 {
		return s
	}
	s.P50 = Quantile(d, 0.50)
	s.P99 = Quantile(d, 0.99)
	s.P999 = Quantile(d, 0.999)
	s.Max = d[len(d)-1]
	return s
}

// Quantile is the nearest-rank q-quantile of sorted: the smallest sample
// that at least q of the samples do not exceed. No interpolation: with few
// samples p99.9 is the maximum, which is what happened, not an estimate.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(n) - 1e-9)) // 0.99*100 is 99.00000000000001
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// recorder collects samples from many goroutines.
type recorder struct {
	mu      sync.Mutex
	samples []time.Duration
	errors  int
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.samples = append(r.samples, d)
	r.mu.Unlock()
}

func (r *recorder) fail() {
	r.mu.Lock()
	r.errors++
	r.mu.Unlock()
}

// take returns the samples and the error count, for use once the
// goroutines that add are done.
func (r *recorder) take() ([]time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.samples, r.errors
}
