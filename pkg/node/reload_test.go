package node

import (
	"crypto/sha256"
	"testing"
)

// TestSettling: reload.watch reloads a change once two polls in a row see
// it, never a state seen once (a file half written), and not again until
// the files change.
func TestSettling(t *testing.T) {
	fp := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	s := settling{last: fp("a"), pending: fp("a")}
	for i, step := range []struct {
		files  string
		reload bool
	}{
		{"a", false},
		{"half", false}, // caught half written
		{"b", false},    // written: seen once
		{"b", true},     // settled
		{"b", false},    // already loaded
		{"c", false},
		{"b", false}, // back before it settled: nothing to do
		{"b", false},
		{"c", false},
		{"c", true},
	} {
		if got := s.settled(fp(step.files)); got != step.reload {
			t.Errorf("poll %d (%s): reload %v, want %v", i, step.files, got, step.reload)
		}
	}
}
