package tunnel

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

func validHead() *tunnelv1.RequestHead {
	return &tunnelv1.RequestHead{Format: Format, Provider: "openai", Method: "POST", Path: []byte("/v1/x"), ContentLength: -1}
}

// The egress refuses malformed heads and out-of-order frames before the
// handler runs.
func TestProtocolErrors(t *testing.T) {
	checkLeaks(t)
	var calls atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	_, addr := startEgress(t, ServerConfig{Handler: h})
	client := rawClient(t, addr)

	with := func(f func(*tunnelv1.RequestHead)) *tunnelv1.Frame {
		h := validHead()
		f(h)
		return headFrame(h)
	}
	tests := []struct {
		name   string
		frames []*tunnelv1.Frame
	}{
		{"body first", []*tunnelv1.Frame{bodyFrame("x"), endFrame()}},
		{"end first", []*tunnelv1.Frame{endFrame()}},
		{"response head first", []*tunnelv1.Frame{{Kind: &tunnelv1.Frame_Response{Response: &tunnelv1.ResponseHead{Status: 200}}}}},
		{"empty frame", []*tunnelv1.Frame{{}}},
		{"empty method", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.Method = "" })}},
		{"method with space", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.Method = "GE T" })}},
		{"method with newline", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.Method = "GET\r\nX: y" })}},
		{"header name with space", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) {
			h.Headers = []*tunnelv1.Header{{Name: "bad name", Values: [][]byte{[]byte("v")}}}
		})}},
		{"empty header name", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) {
			h.Headers = []*tunnelv1.Header{{Name: "", Values: [][]byte{[]byte("v")}}}
		})}},
		{"header name with colon", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) {
			h.Headers = []*tunnelv1.Header{{Name: "X:Y", Values: [][]byte{[]byte("v")}}}
		})}},
		{"header value with newline", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) {
			h.Headers = []*tunnelv1.Header{{Name: "X-Ok", Values: [][]byte{[]byte("ok"), []byte("a\r\nInjected: 1")}}}
		})}},
		{"nil header entry", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) {
			h.Headers = []*tunnelv1.Header{nil}
		})}},
		{"provider with slash", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.Provider = "a/b" })}},
		{"provider with query", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.Provider = "a?b" })}},
		{"provider with escape", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.Provider = "a%2fb" })}},
		{"provider with backslash", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.Provider = `a\b` })}},
		{"relative path", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.Path = []byte("v1/x") })}},
		{"path with NUL", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.Path = []byte("/v1/\x00") })}},
		{"query with DEL", []*tunnelv1.Frame{with(func(h *tunnelv1.RequestHead) { h.RawQuery = []byte("a=\x7f") })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := rawExchange(t.Context(), client, tt.frames...)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got frame %v, err %v; want InvalidArgument", f, err)
			}
		})
	}
	t.Run("no frames", func(t *testing.T) {
		f, err := rawExchange(t.Context(), client)
		if err == nil {
			t.Fatalf("got frame %v, want an error", f)
		}
	})
	if n := calls.Load(); n != 0 {
		t.Errorf("handler ran %d times for refused streams", n)
	}
}

// Frames that break the body reach the handler as a failed body read; the
// exchange itself goes on, so the handler can still answer.
func TestProtocolErrorsInBody(t *testing.T) {
	checkLeaks(t)
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got <- result{string(b), err}
		w.WriteHeader(http.StatusBadRequest)
	})
	_, addr := startEgress(t, ServerConfig{Handler: h})
	client := rawClient(t, addr)

	tests := []struct {
		name    string
		frames  []*tunnelv1.Frame
		wantErr error
	}{
		{"second head", []*tunnelv1.Frame{headFrame(validHead()), bodyFrame("abc"), headFrame(validHead()), endFrame()}, ErrProtocol},
		{"response head in body", []*tunnelv1.Frame{headFrame(validHead()), bodyFrame("abc"),
			{Kind: &tunnelv1.Frame_Response{Response: &tunnelv1.ResponseHead{Status: 200}}}}, ErrProtocol},
		{"empty frame in body", []*tunnelv1.Frame{headFrame(validHead()), bodyFrame("abc"), {}}, ErrProtocol},
		{"half-close without End", []*tunnelv1.Frame{headFrame(validHead()), bodyFrame("abc")}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := rawExchange(t.Context(), client, tt.frames...)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if st := f.GetResponse().GetStatus(); st != http.StatusBadRequest {
				t.Errorf("status = %d", st)
			}
			r := recv(t, got, 5*time.Second, "the handler")
			if !errors.Is(r.err, tt.wantErr) {
				t.Errorf("body read error = %v, want %v", r.err, tt.wantErr)
			}
			if r.body != "abc" {
				t.Errorf("body before the error = %q", r.body)
			}
		})
	}
}

// A head's content length keeps net/http's meaning: negative is unknown.
func TestServerContentLength(t *testing.T) {
	checkLeaks(t)
	got := make(chan int64, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- r.ContentLength
	})
	_, addr := startEgress(t, ServerConfig{Handler: h})
	client := rawClient(t, addr)
	for _, tt := range []struct{ sent, want int64 }{{-1, -1}, {-5, -1}, {3, 3}, {0, 0}} {
		head := validHead()
		head.ContentLength = tt.sent
		frames := []*tunnelv1.Frame{headFrame(head), bodyFrame("abc"), endFrame()}
		if tt.sent == 0 {
			frames = []*tunnelv1.Frame{headFrame(head), endFrame()}
		}
		if _, err := rawExchange(t.Context(), client, frames...); err != nil {
			t.Fatal(err)
		}
		if cl := recv(t, got, 5*time.Second, "the handler"); cl != tt.want {
			t.Errorf("sent %d: handler saw %d, want %d", tt.sent, cl, tt.want)
		}
	}
}

// FuzzServerHead feeds arbitrary request heads to the egress: it must never
// panic, and either refuse the head as InvalidArgument or serve a request
// below "/{provider}".
func FuzzServerHead(f *testing.F) {
	seeds := []struct{ provider, method, path, query, hname, hvalue string }{
		{"openai", "POST", "/v1/chat/completions", "a=1", "Authorization", "Bearer x"},
		{"openai", "GET", "", "", "X-Multi", "a"},
		{"", "GET", "//evil.com/x", "", "Host", "evil.com"},
		{"openai", "GET", "/../../etc/passwd", "", "X", "y"},
		{"openai", "GET", "/a%2fb%00", "q=%zz", "X", "y"},
		{"open ai", "GET", "/a b?c#d", "x#y", "X", "y"},
		{"http:", "GET", "//x", "", "X", "y"},
		{"*", "OPTIONS", "", "", "X", "y"},
		{"a/b", "GET", "/", "", "X", "y"},
		{"a", "G ET", "/", "", "X", "y"},
		{"a", "GET", "x", "", "X", "y"},
		{"a", "GET", "/", "", "bad name", "y"},
		{"a", "GET", "/", "", "X", "a\r\nb"},
		{"a", "GET", "/\x01", "\x7f", "X", "\t"},
		{"ü", "GET", "/ü/%C3%BC", "ü=1", "X-Ü", "ü"},
		{"a", "GET", "/caf\xe9", "q=caf\xe9&\xff", "X-Title", "Caf\xe9 Bot"},
	}
	for _, s := range seeds {
		f.Add(s.provider, s.method, s.path, s.query, s.hname, s.hvalue)
	}

	got := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path
		w.WriteHeader(http.StatusNoContent)
	})
	_, addr := startEgress(f, ServerConfig{Handler: h})
	client := rawClient(f, addr)

	f.Fuzz(func(t *testing.T, provider, method, path, query, hname, hvalue string) {
		// Protobuf strings are UTF-8: anything else fails in the sender.
		// Path, query and header values are bytes: any byte goes.
		v := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		provider = v(provider)
		head := &tunnelv1.RequestHead{
			Format: Format, Provider: provider, Method: v(method), Path: []byte(path), RawQuery: []byte(query),
			Headers: []*tunnelv1.Header{{Name: v(hname), Values: [][]byte{[]byte(hvalue)}}},
		}
		fr, err := rawExchange(t.Context(), client, headFrame(head), endFrame())
		if err != nil {
			if code := status.Code(err); code != codes.InvalidArgument {
				t.Fatalf("head %v: %v; want InvalidArgument or success", head, err)
			}
			select {
			case p := <-got:
				t.Fatalf("refused head %v reached the handler as %q", head, p)
			default:
			}
			return
		}
		if st := fr.GetResponse().GetStatus(); st != http.StatusNoContent {
			t.Fatalf("status = %d", st)
		}
		p := recv(t, got, 5*time.Second, "the handler")
		if !strings.HasPrefix(p, "/"+provider) {
			t.Fatalf("head %v served at path %q, outside /%s", head, p, provider)
		}
	})
}
