package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/testio"
	"github.com/llmesh/llmesh/internal/wait"
)

// The node's log is buffered, but a line reaches the output by itself
// shortly after, a full buffer is written at once, and Close writes the rest.
func TestLogWriter(t *testing.T) {
	var out testio.Buffer
	w := newLogWriter(&out)
	w.Write([]byte("first\n"))
	wait.Until(t, 5*time.Second, "the first line, without Close", func() bool { return out.String() == "first\n" })

	big := strings.Repeat("x", logBufferSize+1)
	w.Write([]byte(big))
	if got := len(out.String()); got < len(big) {
		t.Errorf("a write larger than the buffer: %d bytes out, want at least %d at once", got, len(big))
	}

	w.Write([]byte("last\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "last\n") {
		t.Errorf("Close did not write the buffered line")
	}
}
