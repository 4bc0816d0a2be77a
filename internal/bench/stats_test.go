package bench

import (
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// span is 1..n milliseconds, shuffled so Summarize must sort.
func span(n int) []time.Duration {
	d := make([]time.Duration, n)
	for i := range d {
		d[i] = ms((i*7919)%n + 1) // 7919 is prime, so this visits 1..n once
	}
	return d
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one sample is every quantile", []time.Duration{ms(3)}, Summary{N: 1, P50: ms(3), P99: ms(3), P999: ms(3), Max: ms(3)}},
		{"three: nearest rank, no interpolation", []time.Duration{ms(30), ms(10), ms(20)}, Summary{N: 3, P50: ms(20), P99: ms(30), P999: ms(30), Max: ms(30)}},
		{"100: p99 is the 99th, not the max", span(100), Summary{N: 100, P50: ms(50), P99: ms(99), P999: ms(100), Max: ms(100)}},
		{"1000", span(1000), Summary{N: 1000, P50: ms(500), P99: ms(990), P999: ms(999), Max: ms(1000)}},
		{"2500, the open loop's count", span(2500), Summary{N: 2500, P50: ms(1250), P99: ms(2475), P999: ms(2498), Max: ms(2500)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestQuantileEdges(t *testing.T) {
	sorted := span(10)
	Summarize(sorted)
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, ms(1)}, {0.1, ms(1)}, {0.11, ms(2)}, {0.5, ms(5)}, {1, ms(10)}} {
		if got := Quantile(sorted, tc.q); got != tc.want {
			t.Errorf("Quantile(1..10 ms, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := Quantile(nil, 0.5); got != 0 {
		t.Errorf("Quantile(nil) = %v", got)
	}
}
