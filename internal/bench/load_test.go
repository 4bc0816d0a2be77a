package bench

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/fakeprovider"
)

// TestOpenLoopNeverWaits: every scheduled request is sent even while the
// first is still unanswered (a closed loop would wait for it forever), and
// the count is rate × duration whatever the answers take.
func TestOpenLoopNeverWaits(t *testing.T) {
	const rate, d, want = 1000, 50 * time.Millisecond, 50
	var started atomic.Int32
	allSent := make(chan struct{})
	lat, failed := openLoop(t.Context(), rate, d, func(ctx context.Context) error {
		if started.Add(1) == want {
			close(allSent)
		}
		select {
		case <-allSent:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("the other requests were never sent")
		}
	})
	if len(lat) != want || failed != 0 {
		t.Errorf("%d answered, %d failed; want %d answered", len(lat), failed, want)
	}
}

func TestOpenLoopCountsFailures(t *testing.T) {
	var n atomic.Int32
	lat, failed := openLoop(t.Context(), 1000, 20*time.Millisecond, func(context.Context) error {
		if n.Add(1)%2 == 0 {
			return errors.New("refused")
		}
		return nil
	})
	if len(lat) != 10 || failed != 10 {
		t.Errorf("%d answered, %d failed; want 10 and 10", len(lat), failed)
	}
}

// TestClosedLoopDeadline: a request the phase's deadline cuts short is
// neither answered nor failed; a real error is a failure.
func TestClosedLoopDeadline(t *testing.T) {
	ok, failed := closedLoop(t.Context(), 4, 10*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if ok != 0 || failed != 0 {
		t.Errorf("cut short: %d answered, %d failed; want none", ok, failed)
	}
	ok, failed = closedLoop(t.Context(), 2, 10*time.Millisecond, func(ctx context.Context) error {
		return errors.New("refused")
	})
	if ok != 0 || failed == 0 {
		t.Errorf("refusals: %d answered, %d failed", ok, failed)
	}
}

func TestReadEvents(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		err        error
	}{
		{"openai", "data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n", nil},
		{"crlf, an event name and a comment", ": ping\r\nevent: x\r\ndata: {}\r\n\r\ndata: [DONE]\r\n\r\n", nil},
		{"no space after the colon", "data:[DONE]\n\n", nil},
		{"cut before done", "data: {\"a\":1}\n\n", errNoDone},
		{"empty", "", errNoDone},
		{"done only as text", "data: {\"text\":\"[DONE]\"}\n\n", errNoDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readEvents(strings.NewReader(tc.body), time.Now()); !errors.Is(err, tc.err) {
				t.Errorf("got %v, want %v", err, tc.err)
			}
		})
	}
}

// TestLoadAgainstFakeProvider runs each kind of request against the real
// fake provider on loopback.
func TestLoadAgainstFakeProvider(t *testing.T) {
	fp, err := fakeprovider.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fp.Close)
	c := newClient(16)
	t.Cleanup(c.CloseIdleConnections)
	url := fp.URL + "/v1/chat/completions"
	if err := chat(t.Context(), c, url, false); err != nil {
		t.Fatal(err)
	}
	if err := chat(t.Context(), c, fp.URL+"/v1/nowhere", false); err == nil {
		t.Error("a 404 counted as answered")
	}
	p := streamPlan{n: 4, events: 3, delay: time.Millisecond, run: 20 * time.Millisecond}
	if _, _, err := stream(t.Context(), c, url, p); err != nil {
		t.Fatal(err)
	}
	res := streams(t.Context(), c, url, p)
	if res.Errors != 0 || res.TTFB.N != res.Streams {
		t.Errorf("%+v", res)
	}
}
