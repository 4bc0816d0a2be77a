package wait

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// fakeT records the failure For reports instead of failing the test.
type fakeT struct {
	testing.TB
	failure string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) { f.failure = fmt.Sprintf(format, args...) }

// TestFor runs on a synctest clock: For returns once the condition holds,
// and otherwise fails with the condition's last error after the timeout,
// not before.
func TestFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ready := start.Add(time.Second)
		ft := &fakeT{TB: t}
		For(ft, 2*time.Second, func() error {
			if time.Now().Before(ready) {
				return errors.New("not yet")
			}
			return nil
		})
		if ft.failure != "" || time.Since(start) < time.Second || time.Since(start) > time.Second+interval {
			t.Errorf("a condition true after 1s: failure %q after %v", ft.failure, time.Since(start))
		}

		start = time.Now()
		calls := 0
		For(ft, 2*time.Second, func() error {
			calls++
			return fmt.Errorf("check %d failed", calls)
		})
		if want := fmt.Sprintf("after 2s: check %d failed", calls); ft.failure != want {
			t.Errorf("failure %q, want %q", ft.failure, want)
		}
		if d := time.Since(start); d < 2*time.Second || d > 2*time.Second+interval {
			t.Errorf("gave up after %v, want 2s", d)
		}
	})
}

func TestUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeT{TB: t}
		Until(ft, time.Second, "the sky to fall", func() bool { return false })
		if want := "after 1s: still waiting for the sky to fall"; ft.failure != want {
			t.Errorf("failure %q, want %q", ft.failure, want)
		}
		ft.failure = ""
		Until(ft, time.Second, "nothing", func() bool { return true })
		if ft.failure != "" {
			t.Errorf("a true condition failed: %q", ft.failure)
		}
	})
}
