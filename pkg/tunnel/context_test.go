package tunnel

import (
	"context"
	"testing"
)

type otherKey struct{}

// The request id rides in a context of its own type: it must read back, let
// the values beneath it through, and pass cancellation on as WithValue does.
func TestRequestIDContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "below"))
	ctx := WithInjectKey(WithRequestID(parent, "req-1"))
	if got := RequestID(ctx); got != "req-1" {
		t.Errorf("RequestID = %q, want req-1", got)
	}
	if got := RequestID(parent); got != "" {
		t.Errorf("RequestID of a context without one = %q, want empty", got)
	}
	if got := RequestID(WithRequestID(ctx, "req-2")); got != "req-2" {
		t.Errorf("the innermost id should win, got %q", got)
	}
	if !InjectKey(ctx) || ctx.Value(otherKey{}) != "below" {
		t.Error("values beneath or above the request id are lost")
	}
	child, stop := context.WithCancel(ctx)
	defer stop()
	// Ended at once, as under WithValue: context finds the parent's
	// cancelCtx through it, and starts no goroutine to watch it.
	cancel()
	if child.Err() != context.Canceled {
		t.Errorf("child.Err() = %v, want context.Canceled", child.Err())
	}
}
