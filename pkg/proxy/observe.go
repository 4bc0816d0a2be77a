package proxy

import (
	"errors"
	"net/http"
	"time"

	"github.com/llmesh/llmesh/pkg/metrics"
	"github.com/llmesh/llmesh/pkg/routing"
	"github.com/llmesh/llmesh/pkg/tunnel"
)

// measure collects what the metrics record of a finished request.
//
// The mesh's overhead on this hop is the time from the request's arrival to
// its response head going out to the client, less the time the last attempt
// waited for the next hop's response head (the egress's, or the
// provider's): routing, admission, failed attempts, the tunnel's and the
// proxy's own work. The next hop's wait includes sending it the request body.
// It is measured only when the next hop answered with a head.
func measure(start time.Time, total time.Duration, sw *statusWriter, ex *exchange, body *pacedBody, r *http.Request) metrics.Request {
	m := metrics.Request{Code: sw.code(), Total: total, Overhead: -1, BytesOut: sw.bytes}
	if !sw.firstByteAt.IsZero() {
		m.FirstByte = sw.firstByteAt.Sub(start)
	}
	if ex != nil && ex.nextHopWait > 0 && !sw.headAt.IsZero() {
		m.Overhead = max(sw.headAt.Sub(start)-ex.nextHopWait, 0)
	}
	m.BytesIn = bodyBytes(body, r)
	return m
}

// bodyBytes is the size of the request body: what was read of it when it
// was read to its end under its pace, else its declared length.
func bodyBytes(body *pacedBody, r *http.Request) int64 {
	if body != nil {
		// eof is set after the last count, by the reader: once it is seen,
		// n is final and safe to read here.
		if body.eof.Load() {
			return body.n
		}
		return 0
	}
	return max(r.ContentLength, 0)
}

// observe records a finished request in the metrics.
func (h *Handler) observe(name string, route Route, chosen Target, m metrics.Request) {
	if h.cfg.Metrics == nil {
		return
	}
	h.cfg.Metrics.Series(name, string(route), chosen.Egress).Observe(m)
	if route != RouteRejected && isReroute(chosen.Reason) {
		h.cfg.Metrics.Reroute(string(chosen.Reason))
	}
}

func isReroute(r routing.Reason) bool {
	switch r {
	case routing.ReasonFallbackDirect, routing.ReasonFallbackNearest, routing.ReasonRegionBlock:
		return true
	}
	return false
}

// countRetry records that a request goes again after out.
func (h *Handler) countRetry(out outcome) {
	if h.cfg.Metrics == nil {
		return
	}
	var ns *tunnel.NotSentError
	if errors.As(out.err, &ns) {
		h.cfg.Metrics.Retry("failover")
		h.cfg.Metrics.Failover(tunnel.Reason(ns.Err))
		return
	}
	h.cfg.Metrics.Retry("region_block")
}
