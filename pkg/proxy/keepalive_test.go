package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestKeepaliveWriter runs the SSE keep-alive writer on a synctest bubble's
// clock: a comment after each second of silence, only between events, only
// on event streams, and none once stopped.
func TestKeepaliveWriter(t *testing.T) {
	const every = time.Second
	comment := string(keepaliveComment)
	type step struct {
		write string        // written to the response
		wait  time.Duration // then this much silence
		stop  bool          // stop the writer instead
	}
	tests := []struct {
		name        string
		contentType string
		steps       []step
		want        string
	}{
		{"silence after an event", "text/event-stream", []step{{write: "data: a\n\n", wait: 3*every + every/2}},
			"data: a\n\n" + strings.Repeat(comment, 3)},
		{"silence before the first event", "text/event-stream; charset=utf-8", []step{{wait: 2*every + every/2}},
			strings.Repeat(comment, 2)},
		{"never inside an event", "text/event-stream", []step{
			{write: "data: a\n", wait: 3*every + every/2},
			{write: "\n", wait: every + every/2}, // a one-byte write ends the event
		}, "data: a\n\n" + comment},
		{"events reset the timer", "text/event-stream", []step{
			{write: "data: a\n\n", wait: every / 2},
			{write: "data: b\n\n", wait: every / 2},
			{write: "data: c\n\n", wait: every / 2},
		}, "data: a\n\ndata: b\n\ndata: c\n\n"},
		{"not an event stream", "application/json", []step{{write: "{}\n\n", wait: 3 * every}},
			"{}\n\n"},
		{"stopped", "text/event-stream", []step{
			{write: "data: a\n\n", wait: every + every/2},
			{stop: true},
			{wait: 3 * every},
		}, "data: a\n\n" + comment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := httptest.NewRecorder()
				rec.Header().Set("Content-Type", tt.contentType)
				k := newKeepaliveWriter(rec, every)
				k.WriteHeader(200)
				for _, s := range tt.steps {
					switch {
					case s.stop:
						k.stop()
					case s.write != "":
						if _, err := k.Write([]byte(s.write)); err != nil {
							t.Fatal(err)
						}
					}
					time.Sleep(s.wait)
					synctest.Wait() // the timer's writes are done
				}
				k.stop()
				k.mu.Lock()
				got, flushed := rec.Body.String(), rec.Flushed
				k.mu.Unlock()
				if got != tt.want {
					t.Errorf("body %q, want %q", got, tt.want)
				}
				if wantFlushed := strings.Contains(tt.want, comment); flushed != wantFlushed {
					t.Errorf("flushed %v, want %v: each comment must reach the client at once", flushed, wantFlushed)
				}
			})
		})
	}
}
