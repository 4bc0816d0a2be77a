package membership

import (
	"math"
	"testing"
	"time"
)

// suspicion returns memberlist v0.7.0's suspicion timeouts for a mesh of n
// nodes (state.go suspectNode, util.go suspicionTimeout): the timer starts
// at max and falls to min once k other nodes confirm the suspicion, k =
// SuspicionMult-2, or 0 (min at once) when the mesh has fewer than k nodes
// besides the suspect and the suspecting one.
func suspicion(mult, maxMult, n int, interval time.Duration) (min, max time.Duration, k int) {
	scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
	min = time.Duration(mult) * time.Duration(scale*1000) * interval / 1000
	k = mult - 2
	if n-2 < k {
		k = 0
	}
	return min, time.Duration(maxMult) * min, k
}

// TestSuspicionTable checks the failure-detection table of docs/mesh.md (section
// Gossip) against the timers each profile really configures: when the
// table's numbers drift from the code, this fails.
func TestSuspicionTable(t *testing.T) {
	const s = time.Second
	type row struct {
		n        int
		min, max time.Duration
	}
	tests := map[string][]row{
		"wan":   {{3, 8 * s, 8 * s}, {10, 8 * s, 48 * s}, {100, 16 * s, 96 * s}, {1000, 24 * s, 144 * s}},
		"lan":   {{3, 4 * s, 4 * s}, {10, 4 * s, 24 * s}, {100, 8 * s, 48 * s}, {1000, 12 * s, 72 * s}},
		"local": {{3, 3 * s, 18 * s}, {10, 3 * s, 18 * s}, {100, 6 * s, 36 * s}, {1000, 9 * s, 54 * s}},
	}
	for profile, rows := range tests {
		cfg := Config{Name: "x", Bind: "127.0.0.1:0", Profile: profile}
		mc, err := cfg.memberlist(nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			min, max, k := suspicion(mc.SuspicionMult, mc.SuspicionMaxTimeoutMult, r.n, mc.ProbeInterval)
			if k == 0 {
				max = min // no confirmations expected: the timer is min from the start
			}
			if min != r.min || max != r.max {
				t.Errorf("%s at %d nodes: suspicion %v to %v (k=%d), docs/mesh.md says %v to %v",
					profile, r.n, min, max, k, r.min, r.max)
			}
		}
	}
}
