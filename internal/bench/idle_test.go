package bench

import (
	"testing"
	"time"
)

// TestIdleStreams: every idle stream opens, gets its comments and is
// measured while open; ending them is not counted as a failure.
func TestIdleStreams(t *testing.T) {
	for _, kind := range providerKinds {
		t.Run(kind, func(t *testing.T) { testIdleStreams(t, kind) })
	}
}

func testIdleStreams(t *testing.T, kind string) {
	p, err := startProvider(kind)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	c := newClient(32)
	p.trust(c)
	t.Cleanup(c.CloseIdleConnections)
	const n = 32
	measured := 0
	failed := idleStreams(t.Context(), c, p.URL+"/v1/chat/completions",
		idlePlan{n: n, every: 5 * time.Millisecond, settle: 20 * time.Millisecond, opening: 8},
		func() { measured++ })
	if failed != 0 || measured != 1 {
		t.Errorf("%d failed, measured %d times; want 0 and 1", failed, measured)
	}
	if got := p.Stats().Requests; got != 0 {
		t.Errorf("the fake provider saw %d requests: idle streams must be the bench provider's own", got)
	}
}

func TestPerStream(t *testing.T) {
	got := perStream([]int64{10 << 20, 20 << 20}, []int64{30 << 20, 25 << 20}, 1024)
	if got[0] != 20<<10 || got[1] != 5<<10 || kib(got) != "20.0 + 5.0 KiB" {
		t.Errorf("perStream = %v (%s)", got, kib(got))
	}
}
