package metrics

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkRequestMetrics is what one request costs the metrics: the
// series looked up, in flight counted, and the request observed.
func BenchmarkRequestMetrics(b *testing.B) {
	m := New("ingress", "bench")
	r := Request{Code: 200, Total: time.Second, FirstByte: time.Millisecond, Overhead: time.Millisecond, BytesIn: 100, BytesOut: 300}
	b.ReportAllocs()
	for b.Loop() {
		s := m.Series("openai", "egress", "wnam-1")
		s.Begin()
		s.End()
		s.Observe(r)
	}
}

// BenchmarkLabelLookups is the same done as before pre-resolved series:
// label lookups on every request (in flight, count by code, duration), for
// comparison in one run.
func BenchmarkLabelLookups(b *testing.B) {
	m := New("ingress", "bench")
	b.ReportAllocs()
	for b.Loop() {
		g := m.inflight.WithLabelValues("egress")
		g.Inc()
		g.Dec()
		m.requests.WithLabelValues("openai", "egress", "wnam-1", strconv.Itoa(200)).Inc()
		m.duration.WithLabelValues("openai", "egress").Observe(1)
	}
}
