package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go runs on (sysconf(_SC_CLK_TCK)).
const userHZ = 100

// CPUTime is the user plus system CPU time pid has used, its exited threads
// included (utime and stime of /proc/<pid>/stat; 10 ms resolution).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	ticks, err := parseStatCPU(string(b))
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// parseStatCPU reads utime + stime (fields 14 and 15) from a stat line. The
// command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so fields are counted from the last ')'.
func parseStatCPU(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time %q: %w", s, err)
		}
		ticks += n
	}
	return ticks, nil
}

// PeakRSS is the peak resident set size of pid in bytes (VmHWM): since it
// started, or since the last [ResetPeakRSS].
func PeakRSS(pid int) (int64, error) {
	v, err := statusField(pid, "VmHWM")
	if err != nil {
		return 0, err
	}
	return parseKB(v)
}

// RSS is the resident set size of pid in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	v, err := statusField(pid, "VmRSS")
	if err != nil {
		return 0, err
	}
	return parseKB(v)
}

// ResetPeakRSS starts pid's VmHWM again from its current RSS (writing 5 to
// clear_refs, Linux 4.0 and later).
func ResetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// AllowedCPUs is the list of CPUs pid may run on, as the kernel prints it
// ("1", "0-1").
func AllowedCPUs(pid int) (string, error) {
	return statusField(pid, "Cpus_allowed_list")
}

// statusField reads one "Key:\tvalue" line of /proc/<pid>/status.
func statusField(pid int, key string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	v, ok := findField(bufio.NewScanner(f), key)
	if !ok {
		return "", fmt.Errorf("/proc/%d/status has no %s", pid, key)
	}
	return v, nil
}

func findField(sc *bufio.Scanner, key string) (string, bool) {
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// parseKB reads a status value such as "117304 kB" as bytes.
func parseKB(v string) (int64, error) {
	n, ok := strings.CutSuffix(v, " kB")
	if !ok {
		return 0, fmt.Errorf("want a size in kB, got %q", v)
	}
	kb, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", v, err)
	}
	return kb << 10, nil
}

// CPUBusy is the time each CPU has spent running tasks or, in a virtual
// machine, given to other machines (user, nice, system and steal in
// /proc/stat; interrupts and idle left out), by CPU number.
func CPUBusy() (map[int]time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCPUBusy(string(b))
}

func parseCPUBusy(stat string) (map[int]time.Duration, error) {
	busy := map[int]time.Duration{}
	for line := range strings.Lines(stat) {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		cpu, err := strconv.Atoi(f[0][3:])
		if err != nil {
			return nil, fmt.Errorf("/proc/stat: %q: %w", f[0], err)
		}
		fields := []string{f[1], f[2], f[3]} // user nice system
		if len(f) > 8 {
			fields = append(fields, f[8]) // steal
		}
		var ticks uint64
		for _, s := range fields {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat %s: %w", f[0], err)
			}
			ticks += n
		}
		busy[cpu] = time.Duration(ticks) * time.Second / userHZ
	}
	if len(busy) == 0 {
		return nil, errors.New("/proc/stat lists no CPU")
	}
	return busy, nil
}
