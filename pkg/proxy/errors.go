package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"

	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/tunnel"
)

// classify maps a failed round trip to the error the client sees. It is the
// one place where transport failures become HTTP statuses.
func classify(err error) *provider.Error {
	if slow, ok := bodyTimeout(err); ok {
		return slow
	}
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooBig):
		return tooLarge(tooBig.Limit)
	case errors.Is(err, tunnel.ErrUnauthenticated):
		return &provider.Error{Status: http.StatusBadGateway, Code: "tunnel_unauthenticated",
			Message: "the egress refused this ingress's tunnel credentials (check tunnel.token and tunnel.tls)"}
	case errors.Is(err, tunnel.ErrOverloaded):
		return &provider.Error{Status: http.StatusServiceUnavailable, Code: "egress_overloaded",
			Message: "the egress is at capacity; retry shortly"}
	case errors.Is(err, tunnel.ErrUnavailable):
		return &provider.Error{Status: http.StatusBadGateway, Code: "egress_unavailable",
			Message: "the egress could not be reached"}
	case errors.Is(err, tunnel.ErrProtocol):
		return &provider.Error{Status: http.StatusBadGateway, Code: "tunnel_protocol",
			Message: "the tunnel to the egress failed"}
	case errors.Is(err, errUnexpectedUpgrade):
		return &provider.Error{Status: http.StatusBadGateway, Code: "upstream_protocol",
			Message: "the provider answered 101 Switching Protocols to a request that asked for no upgrade"}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return &provider.Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
			Message: "the provider did not answer in time"}
	}
	return &provider.Error{Status: http.StatusBadGateway, Code: "upstream_unreachable",
		Message: "the provider could not be reached"}
}

// scrub returns err's text without URLs: a *url.Error prints its whole URL,
// and a Gemini ?key= would end up in the log.
func scrub(err error) string {
	if err == nil {
		return ""
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + scrub(ue.Err)
	}
	return err.Error()
}
