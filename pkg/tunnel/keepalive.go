package tunnel

import "time"

// Keepalive says how often each side of a tunnel connection pings a quiet
// peer and how long it waits for the answer. Pings keep quiet streams (a
// model thinking for minutes) alive through NAT and firewalls, and they are
// how a peer that vanished without closing its socket (a host lost, a
// partition) is noticed: its streams fail within Interval+Timeout.
type Keepalive struct {
	// Interval defaults to 10 s, which is also grpc-go's floor for clients
	// (it raises anything shorter); servers may ping down to every second.
	Interval time.Duration
	Timeout  time.Duration // default 10 s
}

// serverMinPing is the shortest ping interval the server tolerates from a
// client before answering too_many_pings: half of grpc-go's client floor.
const serverMinPing = 5 * time.Second

func (k Keepalive) orDefault() Keepalive {
	if k.Interval == 0 {
		k.Interval = 10 * time.Second
	}
	if k.Timeout == 0 {
		k.Timeout = 10 * time.Second
	}
	return k
}
