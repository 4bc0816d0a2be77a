package tunnel

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors a tunnelled round trip can end with. The proxy maps them to HTTP
// statuses; the wrapped message says what the egress or gRPC reported.
var (
	// ErrUnauthenticated: the egress refused the tunnel token or certificate.
	ErrUnauthenticated = errors.New("egress refused the tunnel credentials")
	// ErrUnavailable: the egress could not be reached or is shutting down.
	// The provider was not contacted.
	ErrUnavailable = errors.New("egress unavailable")
	// ErrOverloaded: the egress is at its in-flight limit. The provider was
	// not contacted.
	ErrOverloaded = errors.New("egress over capacity")
	// ErrProtocol: the peer sent frames out of order or garbage.
	ErrProtocol = errors.New("tunnel protocol error")
	// ErrAborted: the exchange broke after it began.
	ErrAborted = errors.New("tunnel stream aborted")
)

// Reason names err's kind for a metric label: unauthenticated,
// unavailable, overloaded, protocol, aborted, deadline, or other.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return "unauthenticated"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	case errors.Is(err, ErrProtocol):
		return "protocol"
	case errors.Is(err, ErrAborted):
		return "aborted"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	}
	return "other"
}

// localError is a failure of this side's own sending (a message that does
// not marshal): that request's failure alone, which says nothing about the
// peer, so it never ejects a connection nor lets the request go elsewhere.
func localError(what string, err error) error {
	return fmt.Errorf("tunnel: %w: %s: %v", ErrProtocol, what, err)
}

// fromStatus turns a gRPC error into one of the errors above. ctx is the
// stream's context: when it ended first, its cause is the real story.
func fromStatus(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %v", ErrAborted, err)
	}
	var base error
	switch st.Code() {
	case codes.Unauthenticated, codes.PermissionDenied:
		base = ErrUnauthenticated
	case codes.Unavailable:
		base = ErrUnavailable
	case codes.ResourceExhausted:
		base = ErrOverloaded
	case codes.InvalidArgument, codes.Unimplemented, codes.Internal:
		base = ErrProtocol
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s", context.DeadlineExceeded, st.Message())
	default:
		// Canceled too: not this request's context (checked above), so the
		// peer or a closing connection cut the exchange.
		base = ErrAborted
	}
	return fmt.Errorf("%w: %s", base, st.Message())
}
