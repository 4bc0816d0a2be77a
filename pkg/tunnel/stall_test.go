package tunnel

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// receivers counts the egress goroutines reading request bodies.
func receivers() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "tunnel.receiveBody(")
}

// A request body that stalls on the ingress ties up nothing on the egress
// once either side gives up: cancelling the stream unblocks the handler's
// read, and a handler that stops reading (a body deadline) ends the
// exchange even while the ingress keeps the stream open.
func TestStalledBody(t *testing.T) {
	t.Run("ingress cancels", func(t *testing.T) {
		checkLeaks(t)
		readErr := make(chan error, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			readErr <- err
		})
		srv, addr := startEgress(t, ServerConfig{Handler: h})
		c := dialEgress(t, addr, DialConfig{})

		body, stall := io.Pipe()
		defer stall.Close()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := c.RoundTrip(newRequest(t, ctx, http.MethodPost, "llmesh://p/upload", body))
			done <- err
		}()
		stall.Write([]byte("the first bytes, then nothing"))
		wait.Until(t, 2*time.Second, "the exchange to reach the handler", func() bool { return srv.InFlight() == 1 && receivers() == 1 })
		cancel()
		if err := recv(t, readErr, 5*time.Second, "the handler's body read to fail"); err == nil {
			t.Error("the handler read a whole body from a cancelled stream")
		}
		if err := recv(t, done, 5*time.Second, "the round trip to end"); !errors.Is(err, context.Canceled) {
			t.Errorf("round trip: %v, want context.Canceled", err)
		}
		wait.Until(t, 2*time.Second, "the egress to let go", func() bool { return srv.InFlight() == 0 && receivers() == 0 })
	})

	t.Run("handler gives up", func(t *testing.T) {
		checkLeaks(t)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body.Read(make([]byte, 64))
			w.WriteHeader(http.StatusRequestTimeout)
		})
		srv, addr := startEgress(t, ServerConfig{Handler: h})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		stream, err := rawClient(t, addr).Exchange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		head := validHead()
		head.ContentLength = 1 << 20
		// The ingress neither sends the rest nor half-closes.
		for _, f := range []*tunnelv1.Frame{headFrame(head), bodyFrame("a few bytes")} {
			if err := stream.Send(f); err != nil {
				t.Fatal(err)
			}
		}
		f, err := stream.Recv()
		if err != nil || f.GetResponse().GetStatus() != http.StatusRequestTimeout {
			t.Fatalf("first frame %v, %v; want a 408 head", f, err)
		}
		for err == nil {
			_, err = stream.Recv()
		}
		if !errors.Is(err, io.EOF) {
			t.Errorf("stream ended with %v, want a clean end", err)
		}
		wait.Until(t, 2*time.Second, "the egress to let go", func() bool { return srv.InFlight() == 0 && receivers() == 0 })
	})
}
