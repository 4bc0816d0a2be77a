package tunnel

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"testing/iotest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// Header values, the query and trailers may hold bytes 0x80-0xFF (HTTP's
// obs-text; Node's fetch sends a Latin-1 X-Title that way): they cross the
// tunnel unchanged in both directions.
func TestHeaderBytes(t *testing.T) {
	checkLeaks(t)
	got := make(chan seen, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- record(r)
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Provider", "na\xefve \xff")
		w.Write([]byte("ok"))
		w.Header().Set("X-Sum", "\xe9t\xe9")
	})
	srv, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})

	req := newRequest(t, t.Context(), http.MethodPost, "llmesh://openrouter/v1/chat", bytes.NewReader([]byte("{}")))
	req.URL.RawQuery = "q=caf\xe9&x=\x80\xff"
	req.Header.Set("X-Title", "Caf\xe9 Bot")
	req.Header["X-Multi"] = []string{"\x80", "a\tb\xfe"}
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("round trip: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "ok" {
		t.Fatalf("body %q, %v", b, err)
	}
	s := recv(t, got, 5*time.Second, "the handler")
	if s.rawQuery != "q=caf\xe9&x=\x80\xff" {
		t.Errorf("raw query = %q", s.rawQuery)
	}
	if v := s.header.Get("X-Title"); v != "Caf\xe9 Bot" {
		t.Errorf("X-Title = %q", v)
	}
	if v := s.header["X-Multi"]; !slices.Equal(v, []string{"\x80", "a\tb\xfe"}) {
		t.Errorf("X-Multi = %q", v)
	}
	if v := resp.Header.Get("X-Provider"); v != "na\xefve \xff" {
		t.Errorf("response X-Provider = %q", v)
	}
	if v := resp.Trailer.Get("X-Sum"); v != "\xe9t\xe9" {
		t.Errorf("trailer X-Sum = %q", v)
	}
	if !c.Usable() {
		t.Error("the connection is ejected")
	}
	wait.Until(t, 2*time.Second, "in-flight counts to return to 0", func() bool {
		return c.InFlight() == 0 && srv.InFlight() == 0
	})
}

// A failure on the ingress itself (a head that does not marshal, a client
// body that cannot be read) is that request's failure: it neither ejects
// the connection nor lets the request be retried on another egress.
func TestLocalFailureIsNotTheEgress(t *testing.T) {
	checkLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	})
	_, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})
	drain := func(url string) {
		resp := get(t, c, url)
		if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
			t.Fatalf("%s: %q, %v", url, b, err)
		}
		resp.Body.Close()
	}
	drain("llmesh://p/warm-up") // the connection is up

	tests := []struct {
		name    string
		req     func() *http.Request
		wantErr func(error) bool
	}{
		{"head does not marshal", func() *http.Request {
			req := newRequest(t, t.Context(), http.MethodPost, "llmesh://p/x", bytes.NewReader([]byte("body")))
			req.Method = "P\xe9ST" // proto3 strings must be UTF-8
			return req
		}, func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"client body fails", func() *http.Request {
			body := io.NopCloser(iotest.ErrReader(errors.New("client connection reset")))
			return newRequest(t, t.Context(), http.MethodPost, "llmesh://p/x", body)
		}, func(err error) bool { var b *bodyReadError; return errors.As(err, &b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.RoundTrip(tt.req())
			if err == nil {
				// The body failure may come after the egress answered.
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			var ns *NotSentError
			if errors.As(err, &ns) || !tt.wantErr(err) {
				t.Fatalf("err = %v (%T), want this request's own failure, not a NotSentError", err, err)
			}
			if !c.Usable() || c.ejected.Load() != 0 {
				t.Fatal("a local failure ejected the connection")
			}
			wait.Until(t, 2*time.Second, "in-flight count to return to 0", func() bool { return c.InFlight() == 0 })
		})
	}
	drain("llmesh://p/after")
}

// oldFrame is a frame in the unversioned format 0: a request head (or a
// response head) in Frame field 1 (2) with string fields.
func oldFrame(t *testing.T, field protowire.Number) *tunnelv1.Frame {
	t.Helper()
	var head []byte
	head = protowire.AppendTag(head, 1, protowire.BytesType)
	head = protowire.AppendString(head, "openai")
	head = protowire.AppendTag(head, 2, protowire.BytesType)
	head = protowire.AppendString(head, "GET")
	head = protowire.AppendTag(head, 3, protowire.BytesType)
	head = protowire.AppendString(head, "/v1/models")
	var raw []byte
	raw = protowire.AppendTag(raw, field, protowire.BytesType)
	raw = protowire.AppendBytes(raw, head)
	f := &tunnelv1.Frame{}
	if err := proto.Unmarshal(raw, f); err != nil {
		t.Fatal(err)
	}
	return f
}

// The egress serves only its own wire format and says so; a format-0
// ingress's head is not mistaken for a head with empty fields.
func TestEgressChecksFormat(t *testing.T) {
	checkLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("served %s", r.URL) })
	_, addr := startEgress(t, ServerConfig{Handler: h})
	client := rawClient(t, addr)
	for _, format := range []uint32{0, Format + 1} {
		head := validHead()
		head.Format = format
		_, err := rawExchange(t.Context(), client, headFrame(head), endFrame())
		if status.Code(err) != codes.Unimplemented || !bytes.Contains([]byte(status.Convert(err).Message()), []byte("wire format")) {
			t.Errorf("format %d: %v, want Unimplemented naming the wire format", format, err)
		}
	}
	_, err := rawExchange(t.Context(), client, oldFrame(t, 1), endFrame())
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("format-0 head: %v, want InvalidArgument", err)
	}
}

// scriptedEgress accepts every exchange, reads the request to its end and
// answers with its frames.
type scriptedEgress struct {
	tunnelv1.UnimplementedTunnelServer
	reply []*tunnelv1.Frame
}

func (e scriptedEgress) Exchange(stream tunnelv1.Tunnel_ExchangeServer) error {
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
	}
	for _, f := range e.reply {
		if err := stream.Send(f); err != nil {
			return err
		}
	}
	return nil
}

// The ingress reads only its own wire format and fails the request (after
// acceptance: no ejection) on another.
func TestIngressChecksFormat(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name  string
		reply *tunnelv1.Frame
	}{
		{"format 0", oldFrame(t, 2)},
		{"unversioned", &tunnelv1.Frame{Kind: &tunnelv1.Frame_Response{Response: &tunnelv1.ResponseHead{Status: 200}}}},
		{"newer", &tunnelv1.Frame{Kind: &tunnelv1.Frame_Response{Response: &tunnelv1.ResponseHead{Format: Format + 1, Status: 200}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grpc.NewServer()
			tunnelv1.RegisterTunnelServer(g, scriptedEgress{reply: []*tunnelv1.Frame{tt.reply, endFrame()}})
			c := dialEgress(t, serveGRPC(t, g), DialConfig{})
			_, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/x", nil))
			var ns *NotSentError
			if !errors.Is(err, ErrProtocol) || errors.As(err, &ns) {
				t.Fatalf("err = %v, want ErrProtocol", err)
			}
			if !c.Usable() {
				t.Error("the connection is ejected")
			}
		})
	}
}

// The gRPC method path is the wire protocol between nodes of different
// versions: moving or renaming the generated Go package must not change it.
func TestMethodPath(t *testing.T) {
	if got, want := tunnelv1.Tunnel_Exchange_FullMethodName, "/llmesh.tunnel.v1.Tunnel/Exchange"; got != want {
		t.Fatalf("method path %q, want %q", got, want)
	}
}
