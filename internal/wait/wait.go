// Package wait polls in tests: a condition that servers, streams or gossip
// will make true is checked again and again until it holds or a deadline
// passes, instead of a sleep that is too short on a loaded machine and too
// long everywhere else.
package wait

import (
	"errors"
	"testing"
	"time"
)

// interval is the pause between two checks.
const interval = 10 * time.Millisecond

// For calls cond until it returns nil. If cond still fails after timeout,
// For fails t with cond's last error, which should say what it saw.
func For(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
			return
		}
		time.Sleep(interval)
	}
}

// Until is For for a condition that is only true or false; what names the
// awaited event in the failure.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	err := errors.New("still waiting for " + what)
	For(t, timeout, func() error {
		if cond() {
			return nil
		}
		return err
	})
}
