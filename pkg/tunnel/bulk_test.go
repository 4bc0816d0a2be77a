package tunnel

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/llmesh/llmesh/internal/wait"
)

// Bulk request bodies (over bulkBodyBytes, or of unknown length) go on a
// second connection to the egress, opened by the first of them; small
// exchanges keep the main one. Until the bulk connection is ready, and
// when it is down, bulk bodies take the main connection: it never fails an
// exchange nor ejects the egress.
func TestBulkConnection(t *testing.T) {
	checkLeaks(t)
	peers := make(chan string, 1)
	_, addr := startEgress(t, ServerConfig{Token: "tok", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		peers <- r.RemoteAddr // the ingress end of the connection that carried it
	})})
	c := dialEgress(t, addr, DialConfig{Token: "tok"})
	send := func(body io.Reader, n int64) string {
		t.Helper()
		req := newRequest(t, context.Background(), "POST", "llmesh://p/upload", body)
		req.ContentLength = n
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatalf("round trip of %d bytes: %v", n, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return recv(t, peers, 5*time.Second, "the egress to serve the request")
	}
	big := func() io.Reader { return strings.NewReader(strings.Repeat("x", bulkBodyBytes+1)) }

	main := send(strings.NewReader("small"), 5)
	if got := send(big(), bulkBodyBytes+1); got != main {
		t.Errorf("the first bulk body went on %s, not on the main connection %s while the bulk one connects", got, main)
	}
	wait.Until(t, 5*time.Second, "the bulk connection to be ready", func() bool { return c.bulkClient() != nil })
	for _, tt := range []struct {
		name string
		body io.Reader
		n    int64
		bulk bool
	}{
		{"small", strings.NewReader("small"), 5, false},
		{"at the threshold", strings.NewReader(strings.Repeat("x", bulkBodyBytes)), bulkBodyBytes, false},
		{"over it", big(), bulkBodyBytes + 1, true},
		{"unknown length", io.MultiReader(strings.NewReader("chunked")), -1, true},
		{"no body", http.NoBody, 0, false},
	} {
		if got := send(tt.body, tt.n); (got != main) != tt.bulk {
			t.Errorf("%s: carried by %s (main connection %s), want bulk %v", tt.name, got, main, tt.bulk)
		}
	}

	// The bulk connection goes down: bulk bodies take the main one again.
	c.bulk.mu.Lock()
	c.bulk.cc.Close()
	c.bulk.mu.Unlock()
	if got := send(big(), bulkBodyBytes+1); got != main {
		t.Errorf("with the bulk connection down, a bulk body went on %s, want the main connection %s", got, main)
	}
	if !c.Usable() {
		t.Error("the egress is ejected after its bulk connection went down")
	}
	c.Close()
	c.bulk.mu.Lock()
	defer c.bulk.mu.Unlock()
	if !c.bulk.closed || c.bulk.cc.GetState() != connectivity.Shutdown {
		t.Error("Close left the bulk connection open")
	}
}
