package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/testio"
	"github.com/llmesh/llmesh/internal/wait"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var stderr testio.Buffer
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, []string{"-listen", "127.0.0.1:0"}, io.Discard, &stderr) }()

	urlRE := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)`)
	var base string
	wait.For(t, 5*time.Second, func() error {
		m := urlRE.FindStringSubmatch(stderr.String())
		if m == nil {
			return fmt.Errorf("no listening line in %q", stderr.String())
		}
		base = m[1]
		return nil
	})

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions?secret=1",
		strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Authorization", "Bearer sk-secret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "chunk 2 ") {
		t.Fatalf("status %d, body %s", res.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	log := stderr.String()
	if !strings.Contains(log, "method=POST path=/v1/chat/completions") {
		t.Errorf("request not logged: %q", log)
	}
	if strings.Contains(log, "sk-secret") || strings.Contains(log, "secret=1") {
		t.Errorf("log leaks headers or query: %q", log)
	}
}

func TestRunBadArgs(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-listen", "256.0.0.1:0"}} {
		if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
