package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/testio"
	"github.com/llmesh/llmesh/internal/wait"
)

// TestRun serves a request to the target, then returns nil once ctx ends.
func TestRun(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "backend "+r.URL.Path)
	}))
	t.Cleanup(backend.Close)
	ctx, cancel := context.WithCancel(t.Context())
	stderr := &testio.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-target", backend.URL}, stderr) }()

	var url string
	listening := regexp.MustCompile(`listening (http://\S+)`)
	wait.Until(t, 10*time.Second, "the listening line", func() bool {
		m := listening.FindStringSubmatch(stderr.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	resp, err := http.Get(url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "backend /x" {
		t.Errorf("got %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-target", "127.0.0.1:9"}, {"-target", "http://127.0.0.1:9", "-listen", "nowhere"}} {
		if err := run(t.Context(), args, io.Discard); err == nil {
			t.Errorf("run %q succeeded", args)
		}
	}
}
