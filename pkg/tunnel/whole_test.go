package tunnel

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// sentFrames is a gRPC stats handler that keeps every frame sent.
type sentFrames struct {
	mu     sync.Mutex
	frames []*tunnelv1.Frame
}

func (s *sentFrames) HandleRPC(_ context.Context, st stats.RPCStats) {
	if out, ok := st.(*stats.OutPayload); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.frames = append(s.frames, out.Payload.(*tunnelv1.Frame))
	}
}

func (s *sentFrames) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (s *sentFrames) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (s *sentFrames) HandleConn(context.Context, stats.ConnStats)                       {}

// take returns the frames sent since the last call.
func (s *sentFrames) take() []*tunnelv1.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.frames
	s.frames = nil
	return f
}

// echo answers the request body with a declared length and a trailer.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Trailer", "X-Sum")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
	w.Header().Set("X-Sum", strconv.Itoa(len(b)))
})

func exchange(t *testing.T, c *Conn, body string) (string, http.Header) {
	t.Helper()
	resp, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodPost, "llmesh://p/x", strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.Trailer
}

// A small exchange is one frame each way once the ingress knows the egress
// reads it (the first exchange on a connection tells it), with the same
// request, response and trailers as in separate frames.
func TestWholeExchangeInOneFrame(t *testing.T) {
	checkLeaks(t)
	var egressSent, ingressSent sentFrames
	_, addr := startEgress(t, ServerConfig{Handler: echo, serverOptions: []grpc.ServerOption{grpc.StatsHandler(&egressSent)}})
	c := dialEgress(t, addr, DialConfig{dialOptions: []grpc.DialOption{grpc.WithStatsHandler(&ingressSent)}})

	for i, want := range []int{3, 1, 1} { // head, body, End; then the head alone
		body := strings.Repeat("x", 100+i)
		got, trailer := exchange(t, c, body)
		if got != body || trailer.Get("X-Sum") != strconv.Itoa(len(body)) {
			t.Fatalf("exchange %d: %d bytes back, trailers %v", i, len(got), trailer)
		}
		if sent := ingressSent.take(); len(sent) != want {
			t.Errorf("exchange %d: the ingress sent %d frames, want %d", i, len(sent), want)
		} else if h := sent[0].GetRequest(); want == 1 && (!h.End || string(h.Body) != body) {
			t.Errorf("exchange %d: the head has end %v and %d body bytes", i, h.End, len(h.Body))
		}
		sent := egressSent.take()
		if len(sent) != 1 || !sent[0].GetResponse().GetEnd() {
			t.Errorf("exchange %d: the egress sent %d frames, want one whole response head", i, len(sent))
		}
	}
}

// A response held to be sent whole goes out when the handler flushes, and
// one that grows past WholeBody streams.
func TestHeldResponseFlushes(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	large := strings.Repeat("y", WholeBody+1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/p/large" {
			// Declared within WholeBody, written past it.
			w.Header().Set("Content-Length", strconv.Itoa(WholeBody/2))
			w.Write([]byte(large[:WholeBody/2]))
			w.Write([]byte(large[WholeBody/2:]))
			return
		}
		w.Header().Set("Content-Length", "5")
		w.Write([]byte("hel"))
		http.NewResponseController(w).Flush()
		<-release
		w.Write([]byte("lo"))
	})
	_, addr := startEgress(t, ServerConfig{Handler: h})
	c := dialEgress(t, addr, DialConfig{})

	// Were the flush not to send the head, the round trip would wait for it.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.RoundTrip(newRequest(t, ctx, http.MethodGet, "llmesh://p/flushed", nil))
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "hello" {
		t.Fatalf("%q, %v", b, err)
	}

	resp, err = c.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://p/large", nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(b, []byte(large)) {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
}

// recordingEgress is an egress of a version before whole exchanges: it
// announces nothing, records the frames it receives and answers in
// separate frames.
type recordingEgress struct {
	tunnelv1.UnimplementedTunnelServer
	got chan []*tunnelv1.Frame
	// announce, when set, says whether this exchange's headers announce
	// whole requests, as a newer egress's do.
	announce func() bool
}

func (e recordingEgress) Exchange(stream tunnelv1.Tunnel_ExchangeServer) error {
	md := metadata.MD{}
	if e.announce != nil && e.announce() {
		md = acceptHeader
	}
	if err := stream.SendHeader(md); err != nil {
		return err
	}
	var got []*tunnelv1.Frame
	for {
		f, err := stream.Recv()
		if err != nil {
			break
		}
		got = append(got, f)
	}
	e.got <- got
	head := &tunnelv1.ResponseHead{Format: Format, Status: 200}
	if err := stream.Send(&tunnelv1.Frame{Kind: &tunnelv1.Frame_Response{Response: head}}); err != nil {
		return err
	}
	return stream.Send(endFrame())
}

// An ingress sends an egress that did not announce whole requests (an
// older version) head, body and End frames, every time.
func TestWholeRequestToAnOlderEgress(t *testing.T) {
	checkLeaks(t)
	e := recordingEgress{got: make(chan []*tunnelv1.Frame, 1)}
	g := grpc.NewServer()
	tunnelv1.RegisterTunnelServer(g, e)
	c := dialEgress(t, serveGRPC(t, g), DialConfig{})
	for i := range 2 {
		exchange(t, c, "hello")
		got := recv(t, e.got, 5*time.Second, "the frames")
		if len(got) != 3 || got[0].GetRequest().GetEnd() || string(got[1].GetBody()) != "hello" || got[2].GetEnd() == nil {
			t.Errorf("exchange %d: the egress got %v", i, got)
		}
	}
}

// An egress replaced by an older version at the same address stops getting
// whole requests from the next exchange on.
func TestWholeRequestAfterADowngrade(t *testing.T) {
	checkLeaks(t)
	var n atomic.Int64
	e := recordingEgress{got: make(chan []*tunnelv1.Frame, 1), announce: func() bool { return n.Add(1) == 1 }}
	g := grpc.NewServer()
	tunnelv1.RegisterTunnelServer(g, e)
	c := dialEgress(t, serveGRPC(t, g), DialConfig{})
	for i, want := range []int{3, 1, 3} { // unknown, announced, no longer announced
		exchange(t, c, "hello")
		if got := recv(t, e.got, 5*time.Second, "the frames"); len(got) != want {
			t.Errorf("exchange %d: %d frames, want %d", i, len(got), want)
		}
	}
}

// An egress answers an ingress that did not say it reads whole responses
// (an older version) with head, body and End frames.
func TestWholeResponseToAnOlderIngress(t *testing.T) {
	checkLeaks(t)
	_, addr := startEgress(t, ServerConfig{Handler: echo})
	client := rawClient(t, addr)
	for _, newer := range []bool{false, true} {
		head := validHead()
		head.ContentLength, head.ResponseEnd = 5, newer
		f, err := rawExchange(t.Context(), client, headFrame(head), bodyFrame("hello"), endFrame())
		if err != nil {
			t.Fatal(err)
		}
		if rh := f.GetResponse(); rh.GetEnd() != newer || newer != (string(rh.GetBody()) == "hello") {
			t.Errorf("response_end %v: the first frame %v", newer, f)
		}
	}
}

// decodeHeader reads headers as http.Header.Add would have: canonical names,
// values of a repeated name in order, nothing for nil entries or no values.
func TestDecodeHeader(t *testing.T) {
	hv := func(name string, values ...string) *tunnelv1.Header {
		h := &tunnelv1.Header{Name: name}
		for _, v := range values {
			h.Values = append(h.Values, []byte(v))
		}
		return h
	}
	got := decodeHeader([]*tunnelv1.Header{
		hv("x-one", "1"), nil, hv("X-Two", "a", "b"), hv("x-two", "c"), hv("X-None"), hv("X-One", "2"),
	})
	want := http.Header{"X-One": {"1", "2"}, "X-Two": {"a", "b", "c"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Appending to one name must not write over another's values.
	got["X-Two"] = append(got["X-Two"], "d")
	if !reflect.DeepEqual(got["X-One"], []string{"1", "2"}) {
		t.Errorf("X-One became %v", got["X-One"])
	}
	// Trailer declarations under http.TrailerPrefix are not sent as headers.
	if enc := encodeHeader(http.Header{"A": {"1"}, http.TrailerPrefix + "B": {"2"}}); len(enc) != 1 || enc[0].Name != "A" {
		t.Errorf("encoded %v", enc)
	}
}
