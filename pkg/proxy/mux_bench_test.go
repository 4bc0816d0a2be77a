package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/tunnel"
	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// BenchmarkProxyMuxToFloor prices the tunnel design that docs/benchmarks.md
// names as the way to the CPU goal: exchanges carried on one long-lived
// gRPC stream instead of a stream each. It is BenchmarkProxyTunnelToFloor
// with a sketch of that design in place of the tunnel: whole requests and
// whole answers, one message each way, matched by an id, on the wire format
// of the tunnel (an id in the request head and in an answer header). The
// sketch has none of what a real one needs (flow control per exchange,
// acceptance, cancellation, error codes, streamed bodies); it measures the
// least such a design costs, beside ProxyTunnelToFloor and
// ProxyDirectToFloor.
func BenchmarkProxyMuxToFloor(b *testing.B) {
	mux := dialMux(b, floorFor(b, upstream(b, chatReply).URL))
	url, client := benchProxy(b, chatReply, func(c *Config) {
		c.Router = routeTo(Target{Transport: mux, Tunnel: true, Route: RouteEgress, Egress: "e1", Hint: "eu"})
	})
	measureChats(b, client, url)
}

// muxIDHeader carries an answer's exchange id.
const muxIDHeader = "X-Mux-Id"

// muxServer serves every exchange of a stream with h, each on a goroutine
// of its own, and answers each in one frame.
type muxServer struct {
	tunnelv1.UnimplementedTunnelServer
	h http.Handler
}

func (s muxServer) Exchange(stream tunnelv1.Tunnel_ExchangeServer) error {
	var send sync.Mutex
	for {
		f, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		head := f.GetRequest()
		go func() {
			req := httptest.NewRequestWithContext(stream.Context(), head.Method, "/"+head.Provider+string(head.Path), bytes.NewReader(head.Body))
			for _, kv := range head.Headers {
				for _, v := range kv.Values {
					req.Header.Add(kv.Name, string(v))
				}
			}
			w := httptest.NewRecorder()
			s.h.ServeHTTP(w, req)
			w.Header().Set(muxIDHeader, head.RequestId)
			answer := &tunnelv1.ResponseHead{Format: tunnel.Format, Status: int32(w.Code), Headers: muxHeaders(w.Header()), Body: w.Body.Bytes(), End: true}
			send.Lock()
			defer send.Unlock()
			stream.Send(&tunnelv1.Frame{Kind: &tunnelv1.Frame_Response{Response: answer}})
		}()
	}
}

// muxConn is the ingress end: an http.RoundTripper for llmesh:// requests
// that sends each on the one stream and waits for the answer with its id.
type muxConn struct {
	stream  tunnelv1.Tunnel_ExchangeClient
	send    sync.Mutex
	next    atomic.Uint64
	pending sync.Map // id → chan *tunnelv1.ResponseHead
}

func (m *muxConn) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	id := strconv.FormatUint(m.next.Add(1), 10)
	answered := make(chan *tunnelv1.ResponseHead, 1)
	m.pending.Store(id, answered)
	head := &tunnelv1.RequestHead{Format: tunnel.Format, Provider: req.URL.Host, Method: req.Method,
		Path: []byte(req.URL.EscapedPath()), Headers: muxHeaders(req.Header), RequestId: id,
		ContentLength: int64(len(body)), Body: body, End: true, ResponseEnd: true}
	m.send.Lock()
	err = m.stream.Send(&tunnelv1.Frame{Kind: &tunnelv1.Frame_Request{Request: head}})
	m.send.Unlock()
	if err != nil {
		return nil, err
	}
	answer := <-answered
	h := make(http.Header, len(answer.Headers))
	for _, kv := range answer.Headers {
		for _, v := range kv.Values {
			h.Add(kv.Name, string(v))
		}
	}
	return &http.Response{StatusCode: int(answer.Status), Header: h, ContentLength: int64(len(answer.Body)),
		Body: io.NopCloser(bytes.NewReader(answer.Body)), Request: req}, nil
}

// receive hands each answer to the round trip waiting for its id.
func (m *muxConn) receive() {
	for {
		f, err := m.stream.Recv()
		if err != nil {
			return
		}
		answer := f.GetResponse()
		for _, kv := range answer.Headers {
			if kv.Name == muxIDHeader && len(kv.Values) == 1 {
				if ch, ok := m.pending.LoadAndDelete(string(kv.Values[0])); ok {
					ch.(chan *tunnelv1.ResponseHead) <- answer
				}
			}
		}
	}
}

// dialMux serves h behind a muxServer on loopback and returns a muxConn
// to it, its stream open for the benchmark's length.
func dialMux(b *testing.B, h http.Handler) *muxConn {
	g := grpc.NewServer()
	tunnelv1.RegisterTunnelServer(g, muxServer{h: h})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go g.Serve(lis)
	b.Cleanup(g.Stop)
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	stream, err := tunnelv1.NewTunnelClient(cc).Exchange(ctx)
	if err != nil {
		b.Fatal(err)
	}
	m := &muxConn{stream: stream}
	go m.receive()
	return m
}

func muxHeaders(h http.Header) []*tunnelv1.Header {
	out := make([]*tunnelv1.Header, 0, len(h))
	for k, vs := range h {
		m := &tunnelv1.Header{Name: k}
		for _, v := range vs {
			m.Values = append(m.Values, []byte(v))
		}
		out = append(out, m)
	}
	return out
}

// BenchmarkProxyDirectToFloorH2C is BenchmarkProxyDirectToFloor with HTTP/2
// (cleartext) between the ingress and the floor instead of HTTP/1.1: the
// hop of a design that multiplexes exchanges on one connection with
// net/http instead of grpc-go.
func BenchmarkProxyDirectToFloorH2C(b *testing.B) {
	mid := httptest.NewUnstartedServer(floorFor(b, upstream(b, chatReply).URL))
	mid.Config.Protocols = new(http.Protocols)
	mid.Config.Protocols.SetUnencryptedHTTP2(true)
	mid.Start()
	b.Cleanup(mid.Close)
	tr := NewTransport(2*time.Second, 10*time.Second)
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	b.Cleanup(tr.CloseIdleConnections)
	url, client := benchProxy(b, chatReply, func(c *Config) {
		p, err := provider.New("p", mid.URL, provider.StyleOpenAI, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		c.Providers = provider.NewRegistry(p)
		c.Transport = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := tr.RoundTrip(r)
			if err == nil && resp.ProtoMajor != 2 {
				b.Errorf("the hop spoke %s, want HTTP/2", resp.Proto) // not Fatal: a handler's goroutine
			}
			return resp, err
		})
	})
	measureChats(b, client, url)
}
