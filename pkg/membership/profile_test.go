package membership

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmesh/llmesh/internal/wait"
)

// TestProfileDeadTime measures how long each profile takes to declare a
// crashed node dead on loopback (three nodes; one stops without leaving).
// It runs in `make chaos` (LLMESH_CHAOS=1): the WAN profile takes seconds.
func TestProfileDeadTime(t *testing.T) {
	if os.Getenv("LLMESH_CHAOS") == "" {
		t.Skip("timing measurement: run with make chaos (LLMESH_CHAOS=1)")
	}
	// memberlist's probe goroutines outlive Shutdown by up to a probe
	// timeout of the slow profiles: let them end before TestMain's leak check.
	t.Cleanup(func() {
		wait.For(t, 20*time.Second, func() error { return goleak.Find() })
	})
	for _, tc := range []struct {
		profile string
		max     time.Duration
	}{
		{"lan", 8 * time.Second},
		{"wan", 15 * time.Second}, // the target
	} {
		t.Run(tc.profile, func(t *testing.T) {
			t.Parallel()
			cfg := func(name string, join ...string) Config {
				c := testConfig(name, Meta{Role: "egress"}, join...)
				c.Profile, c.Tune = tc.profile, nil
				return c
			}
			a := start(t, cfg("a"))
			b := start(t, cfg("b", a.LocalAddr()))
			victim, err := Start(cfg("victim", a.LocalAddr()))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []*Membership{a, b} {
				wait.Until(t, 20*time.Second, m.Name()+" to see the victim", func() bool { return stateOf(m, "victim") == StateAlive })
			}
			victim.Shutdown() // a crash: no leave message
			crashed := time.Now()
			wait.Until(t, tc.max, "the victim to be declared dead", func() bool {
				return stateOf(a, "victim") == StateDead && stateOf(b, "victim") == StateDead
			})
			t.Logf("profile %s: dead after %s", tc.profile, time.Since(crashed).Round(100*time.Millisecond))
		})
	}
}
