package bench

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 40 and 2 in each good line.
	const rest = " S 1 2 3 4 5 6 7 8 9 10 40 2 0 0 20 0 1 0 100 2000 30"
	for _, tc := range []struct {
		name, stat string
		want       uint64
		err        bool
	}{
		{"plain", "1234 (ingress)" + rest, 42, false},
		{"a name with spaces and parentheses", "1234 (a) b (c) d)" + rest, 42, false},
		{"an empty name", "1234 ()" + rest, 42, false},
		{"no name", "1234 ingress S 1", 0, true},
		{"cut short", "1234 (ingress) S 1 2 3 4 5 6 7 8 9 10 40", 0, true},
		{"not a number", "1234 (x) S 1 2 3 4 5 6 7 8 9 10 4x 2 0", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU(tc.stat)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestStatusFields(t *testing.T) {
	const status = "Name:\tingress\nVmPeak:\t  2000 kB\nVmHWM:\t  117304 kB\nCpus_allowed_list:\t1\n"
	find := func(key string) (string, bool) {
		return findField(bufio.NewScanner(strings.NewReader(status)), key)
	}
	if v, ok := find("Cpus_allowed_list"); !ok || v != "1" {
		t.Errorf("Cpus_allowed_list = %q, %v", v, ok)
	}
	if _, ok := find("VmHW"); ok {
		t.Error("a key's prefix matched")
	}
	v, _ := find("VmHWM")
	if n, err := parseKB(v); err != nil || n != 117304<<10 {
		t.Errorf("VmHWM = %d, %v", n, err)
	}
	for _, bad := range []string{"117304", "x kB", "12 MB", ""} {
		if _, err := parseKB(bad); err == nil {
			t.Errorf("parseKB(%q) took it", bad)
		}
	}
}

// TestProcSelf reads this process's own /proc entries, as the harness reads
// the proxies'.
func TestProcSelf(t *testing.T) {
	pid := os.Getpid()
	if _, err := CPUTime(pid); err != nil {
		t.Error(err)
	}
	if rss, err := PeakRSS(pid); err != nil || rss <= 0 {
		t.Errorf("PeakRSS = %d, %v", rss, err)
	}
	if cpus, err := AllowedCPUs(pid); err != nil || cpus == "" {
		t.Errorf("AllowedCPUs = %q, %v", cpus, err)
	}
	if err := ResetPeakRSS(pid); err != nil && !errors.Is(err, fs.ErrPermission) {
		t.Error(err)
	}
	if _, err := CPUTime(-1); err == nil {
		t.Error("CPUTime of no process succeeded")
	}
}

func TestParseCPUBusy(t *testing.T) {
	const stat = `cpu  900 10 300 5000 20 0 40 0 0 0
cpu0 400 0 100 2500 10 0 20 0 0 0
cpu1 500 10 200 2500 10 0 20 30 0 0
intr 12345
ctxt 6789
`
	busy, err := parseCPUBusy(stat)
	if err != nil {
		t.Fatal(err)
	}
	// user + nice + system + steal, in ticks of 10 ms.
	if len(busy) != 2 || busy[0] != 5*time.Second || busy[1] != 7400*time.Millisecond {
		t.Errorf("got %v", busy)
	}
	for _, bad := range []string{"", "intr 1\n", "cpuX 1 2 3 4\n", "cpu0 1 x 3 4\n"} {
		if _, err := parseCPUBusy(bad); err == nil {
			t.Errorf("parseCPUBusy(%q) took it", bad)
		}
	}
	if _, err := CPUBusy(); err != nil {
		t.Error(err)
	}
}
