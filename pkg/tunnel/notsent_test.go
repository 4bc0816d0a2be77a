package tunnel

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
)

// TestNotSent: refusals before the egress accepts a stream are NotSentError
// (safe to retry) and eject the connection for a while; a failure after the
// egress took the exchange is not.
func TestNotSent(t *testing.T) {
	checkLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		panic(http.ErrAbortHandler)
	})
	srv, addr := startEgress(t, ServerConfig{Handler: h, Token: "t"})

	// Wrong token: refused before acceptance.
	bad := dialEgress(t, addr, DialConfig{Token: "wrong"})
	_, err := bad.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/x", nil))
	var ns *NotSentError
	if !errors.As(err, &ns) || !errors.Is(err, ErrUnauthenticated) || ns.Egress != bad.Name {
		t.Fatalf("wrong token: %v, want a NotSentError wrapping ErrUnauthenticated", err)
	}
	if bad.Usable() {
		t.Fatal("a connection that was just refused is still picked")
	}
	wait.Until(t, 2*time.Second, "the ejection to end", bad.Usable)

	// Draining: refused before acceptance.
	good := dialEgress(t, addr, DialConfig{Token: "t"})
	srv.SetDraining(true)
	_, err = good.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/x", nil))
	if !errors.As(err, &ns) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("draining: %v, want a NotSentError wrapping ErrUnavailable", err)
	}
	srv.SetDraining(false)

	// Accepted, then broken: the provider may have been contacted.
	wait.Until(t, 2*time.Second, "the ejection to end", good.Usable)
	resp, err := good.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || errors.As(err, &ns) {
		t.Fatalf("broken after acceptance: %v, want an error that is not NotSentError", err)
	}
	if !good.Usable() {
		t.Fatal("an accepted exchange ejected the connection")
	}
}
