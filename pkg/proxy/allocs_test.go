//go:build !race

// The race detector allocates on its own: these run without it (make test
// runs them in a pass of their own).

package proxy

import (
	"testing"
)

// Allocations per proxied request, the whole process counted: the test's
// client and fake provider (about 100 of them on the direct path) as well
// as the proxy. The bounds sit just above what the code reaches: a change
// that allocates more per request fails here, and one that allocates less
// should lower them. Allocations, not times: they do not depend on the
// machine or its load.
const (
	maxAllocsDirect = 197 // measured 195
	maxAllocsTunnel = 472 // measured 469: ingress, tunnel both ways, egress
)

func TestAllocsPerDirectRequest(t *testing.T) {
	checkLeaks(t)
	url, client := benchProxy(t, chatReply)
	checkAllocs(t, "direct request", maxAllocsDirect, func() { chat(t, client, url) })
}

func TestAllocsPerTunnelExchange(t *testing.T) {
	checkLeaks(t)
	url, client := benchMesh(t, chatReply)
	checkAllocs(t, "tunnelled request", maxAllocsTunnel, func() { chat(t, client, url) })
}

func checkAllocs(t *testing.T, what string, max float64, f func()) {
	t.Helper()
	for range 20 { // connections, pools and buffers warm
		f()
	}
	got := testing.AllocsPerRun(200, f)
	t.Logf("%s: %.0f allocations", what, got)
	if got > max {
		t.Errorf("%s: %.0f allocations, want at most %.0f", what, got, max)
	}
}
