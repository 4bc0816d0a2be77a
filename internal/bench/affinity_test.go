package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// twoCPUs skips the test unless this process may use two CPUs.
func twoCPUs(t *testing.T) []int {
	t.Helper()
	cpus, err := CPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) < 2 {
		t.Skipf("needs two CPUs, has %v", cpus)
	}
	return cpus
}

// threadCPUs is the Cpus_allowed_list of every thread of this process.
func threadCPUs(t *testing.T) map[string]bool {
	t.Helper()
	tids, err := threads()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tid := range tids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", tid))
		if err != nil {
			continue // the thread exited
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				seen[strings.TrimSpace(v)] = true
			}
		}
	}
	return seen
}

// TestStartOn: the child runs on the CPU asked for, and no thread of this
// process stays moved.
func TestStartOn(t *testing.T) {
	cpus := twoCPUs(t)
	before := threadCPUs(t)
	cmd := exec.Command("sleep", "30")
	if err := StartOn(cmd, cpus[1]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	got, err := AllowedCPUs(cmd.Process.Pid)
	if err != nil || got != strconv.Itoa(cpus[1]) {
		t.Errorf("the child may run on %q (%v), want %d", got, err, cpus[1])
	}
	if after := threadCPUs(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("this process's threads may run on %v after StartOn, %v before", after, before)
	}
}

// TestPinSelf pins a child copy of this test binary, which then starts more
// threads and reports every thread's CPUs.
func TestPinSelf(t *testing.T) {
	if cpu := os.Getenv("BENCH_PIN_CHILD"); cpu != "" {
		n, _ := strconv.Atoi(cpu)
		if err := PinSelf(n); err != nil {
			t.Fatal(err)
		}
		release := lockThreads(4) // threads started after pinning inherit it
		defer release()
		fmt.Printf("threads on %v\n", threadCPUs(t))
		return
	}
	cpus := twoCPUs(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestPinSelf$", "-test.v")
	// GORACE: under -race the child would otherwise sleep a second at exit.
	cmd.Env = append(os.Environ(), "BENCH_PIN_CHILD="+strconv.Itoa(cpus[1]), "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := fmt.Sprintf("threads on map[%d:true]\n", cpus[1]); !strings.Contains(string(out), want) {
		t.Errorf("want %q in\n%s", want, out)
	}
}

// lockThreads makes the runtime start n more threads: each goroutine holds
// its own, locked, until release is closed.
func lockThreads(n int) (release func()) {
	done, started := make(chan struct{}), make(chan struct{})
	for range n {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			started <- struct{}{}
			<-done
		}()
	}
	for range n {
		<-started
	}
	return func() { close(done) }
}
