//go:build !race

// The race detector allocates on its own: this runs without it (make test
// runs it in a pass of its own).

package tunnel

import (
	"net/http"
	"testing"
)

// maxAllocsExchange bounds the allocations of one small exchange over a
// real loopback tunnel, both ends and the handler counted; measured 232.
// A change that allocates more per exchange fails here; one that allocates
// less should lower it.
const maxAllocsExchange = 240

func TestAllocsPerExchange(t *testing.T) {
	checkLeaks(t)
	c := benchConn(t, chatEgress)
	exchange := func() { roundTrip(t, c, http.MethodPost, chatRequest) }
	for range 20 { // the connection, pools and buffers warm
		exchange()
	}
	got := testing.AllocsPerRun(200, exchange)
	t.Logf("%.0f allocations per exchange", got)
	if got > maxAllocsExchange {
		t.Errorf("%.0f allocations per exchange, want at most %d", got, maxAllocsExchange)
	}
}
