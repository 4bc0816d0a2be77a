// Package benchcpu adds CPU time per operation to Go benchmarks: the user
// and system time of the whole process, so a benchmark whose client and
// server run in the same process reports both ends' work. On a shared
// machine it is steadier than ns/op, which counts time spent waiting for a
// CPU as well.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// Start marks the start of b's measured loop; call the returned function
// after the loop to report cpu-µs/op.
func Start(b *testing.B) (report func()) {
	b.Helper()
	start := processCPU(b)
	return func() {
		b.ReportMetric(float64(processCPU(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
