package proxy

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"

	"github.com/llmesh/llmesh/pkg/provider"
)

// clientLimit caps the proxied requests in flight per client address, so
// that one client cannot take every slot of http.max_in_flight. Clients
// behind one NAT, proxy or CDN share an address, and so share the cap.
type clientLimit struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire counts a request from remoteAddr. ok false: the client is at its
// cap of max (0: no cap). Call release when the request ends.
func (c *clientLimit) acquire(remoteAddr string, max int) (release func(), ok bool) {
	if max <= 0 {
		return func() {}, true
	}
	key := clientKey(remoteAddr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= max {
		return nil, false
	}
	if c.n == nil {
		c.n = make(map[string]int)
	}
	c.n[key]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.n[key]--; c.n[key] <= 0 {
			delete(c.n, key)
		}
	}, true
}

func clientRefusal(max int) *provider.Error {
	return &provider.Error{Status: http.StatusTooManyRequests, Code: "client_over_capacity",
		Message: "this client address has " + strconv.Itoa(max) + " requests in flight on this node, its limit; retry when one ends"}
}

// clientKey is the address a client is counted under: its IP, and for IPv6
// its /64, which one host or site usually holds whole.
func clientKey(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	addr := ap.Addr().Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
