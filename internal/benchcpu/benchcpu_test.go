package benchcpu

import (
	"crypto/sha256"
	"testing"
)

// TestReportsCPU checks that a benchmark that burns CPU reports it.
func TestReportsCPU(t *testing.T) {
	res := testing.Benchmark(func(b *testing.B) {
		report := Start(b)
		buf := make([]byte, 64<<10)
		for b.Loop() {
			sha256.Sum256(buf)
		}
		report()
	})
	got, ok := res.Extra["cpu-µs/op"]
	if !ok {
		t.Fatalf("no cpu-µs/op in %v", res.Extra)
	}
	// Hashing 64 KiB takes tens of µs on any machine, and never 0.
	if got <= 0 || got > 100_000 {
		t.Fatalf("cpu-µs/op = %v, want a positive time below 100 ms", got)
	}
}
