package tunnel

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/llmesh/llmesh/internal/benchcpu"
	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// The hop benchmarks price one small chat exchange (the same request and
// answer as BenchmarkTunnelRoundTrip) across one hop on loopback, both ends
// in this process, in CPU time per exchange (cpu-µs/op, user and system
// time of the whole process: the client's work and the server's together).
// They bound what any ingress + egress built on a gRPC stream per exchange
// can cost against the two-hop floor of make bench, whose hop is HTTP/1.1:
//
//   - HopHTTP1: the floor's hop, net/http client to net/http server;
//   - HopGRPCStream: a bare gRPC stream per exchange, one message each way,
//     no llmesh code (the least a stream per exchange costs);
//   - HopGRPCMessage: one message each way on a stream already open, the
//     cost per exchange of a design that carries many exchanges on one
//     long-lived stream;
//   - HopGRPCMessageAcked: the same with an acceptance message back
//     before each answer;
//   - HopTunnel: llmesh's tunnel, Conn.RoundTrip to Server.
//
// docs/benchmarks.md reads them.

func BenchmarkHopHTTP1(b *testing.B) {
	srv := httptest.NewServer(chatEgress)
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	url := srv.URL + "/v1/chat/completions"
	b.ReportAllocs()
	report := benchcpu.Start(b)
	for b.Loop() {
		exchangeVia(b, tr, http.MethodPost, url, chatRequest)
	}
	report()
}

func BenchmarkHopGRPCStream(b *testing.B) {
	client := bareTunnel(b)
	b.ReportAllocs()
	report := benchcpu.Start(b)
	for b.Loop() {
		stream, err := client.Exchange(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if err := stream.Send(benchRequestFrame()); err != nil {
			b.Fatal(err)
		}
		stream.CloseSend()
		if _, err := stream.Recv(); err != nil {
			b.Fatal(err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			b.Fatalf("want the stream's end, got %v", err)
		}
	}
	report()
}

func BenchmarkHopGRPCMessage(b *testing.B) { benchMessages(b, false) }

// BenchmarkHopGRPCMessageAcked is HopGRPCMessage with one more message
// back before the answer: the acceptance an exchange on a shared stream
// would need before its provider call, to keep the retry guarantee of
// tunnel.accept_timeout.
func BenchmarkHopGRPCMessageAcked(b *testing.B) { benchMessages(b, true) }

// benchMessages sends request frames on one stream that lasts the
// benchmark, each answered by one frame, or by two when acked.
func benchMessages(b *testing.B, acked bool) {
	stream, err := bareTunnel(b).Exchange(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stream.CloseSend() })
	answers := 1
	if acked {
		if err := stream.Send(requestFrame(&tunnelv1.RequestHead{Format: Format, Provider: ackFirst})); err != nil {
			b.Fatal(err)
		}
		answers = 2
	}
	b.ReportAllocs()
	report := benchcpu.Start(b)
	for b.Loop() {
		if err := stream.Send(benchRequestFrame()); err != nil {
			b.Fatal(err)
		}
		for range answers {
			if _, err := stream.Recv(); err != nil {
				b.Fatal(err)
			}
		}
	}
	report()
}

func BenchmarkHopTunnel(b *testing.B) {
	c := benchConn(b, chatEgress)
	b.ReportAllocs()
	report := benchcpu.Start(b)
	for b.Loop() {
		roundTrip(b, c, http.MethodPost, chatRequest)
	}
	report()
}

// benchRequestFrame is the frame the tunnel sends for roundTrip's request:
// its head, with the whole body and the end in it.
func benchRequestFrame() *tunnelv1.Frame {
	return requestFrame(&tunnelv1.RequestHead{
		Format: Format, Provider: "openai", Method: http.MethodPost, Path: []byte("/v1/chat/completions"),
		Headers: encodeHeader(http.Header{
			"Content-Type":  {"application/json"},
			"Authorization": {"Bearer sk-bench"},
		}),
		ContentLength: int64(len(chatRequest)), Body: chatRequest, End: true, ResponseEnd: true,
	})
}

// echoTunnel answers every request frame of a stream with chatEgress's
// answer in one frame, until the client closes its side.
type echoTunnel struct {
	tunnelv1.UnimplementedTunnelServer
}

// ackFirst, as the provider of a stream's first frame, asks echoTunnel to
// send an acceptance frame before each answer on that stream.
const ackFirst = "ack-first"

func (echoTunnel) Exchange(stream tunnelv1.Tunnel_ExchangeServer) error {
	acks := false
	for {
		f, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if f.GetRequest().GetProvider() == ackFirst {
			acks = true
			continue
		}
		if acks {
			ack := &tunnelv1.ResponseHead{Format: Format, Status: http.StatusContinue}
			if err := stream.Send(&tunnelv1.Frame{Kind: &tunnelv1.Frame_Response{Response: ack}}); err != nil {
				return err
			}
		}
		answer := &tunnelv1.ResponseHead{
			Format: Format, Status: http.StatusOK, Body: chatAnswer, End: true,
			Headers: encodeHeader(http.Header{
				"Content-Type":   {"application/json"},
				"Content-Length": {strconv.Itoa(len(chatAnswer))},
			}),
		}
		if err := stream.Send(&tunnelv1.Frame{Kind: &tunnelv1.Frame_Response{Response: answer}}); err != nil {
			return err
		}
	}
}

// bareTunnel serves echoTunnel with grpc-go's defaults and returns a client.
func bareTunnel(b *testing.B) tunnelv1.TunnelClient {
	g := grpc.NewServer()
	tunnelv1.RegisterTunnelServer(g, echoTunnel{})
	addr := serveGRPC(b, g)
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return tunnelv1.NewTunnelClient(cc)
}
