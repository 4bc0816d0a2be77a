package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// ServerConfig configures an egress's tunnel server.
type ServerConfig struct {
	// Handler serves the reconstructed requests: the same proxy handler the
	// direct path uses, resolving providers from the egress's own config.
	Handler http.Handler
	// Token, when set, must be presented by every stream.
	Token string
	// MaxStreams caps exchanges in flight on the node; more are refused at
	// once with ResourceExhausted. Each connection's HTTP/2 stream cap is
	// twice this, so the refusal, not a queue in the client, answers first.
	MaxStreams uint32
	// TLS, when set, is the server's transport credentials (mutual TLS).
	TLS credentials.TransportCredentials
	// HandshakeTimeout bounds a new connection's handshake (TLS, then the
	// HTTP/2 preface): a silent connection is closed after it. Default 10 s.
	HandshakeTimeout time.Duration
	// MaxHandshakes caps connections in their handshake (TLS; in plaintext,
	// the wait for the HTTP/2 preface) at once; more are closed at once.
	// Default 256.
	MaxHandshakes int
	// Keepalive: the server pings quiet ingress connections too, so a
	// provider call whose ingress vanished is cancelled, not left running.
	Keepalive Keepalive
	Logger    *slog.Logger
	// OnStream, when set, is told how each stream ended (a gRPC code), for metrics.
	OnStream func(code codes.Code)
	// Trace: read the ingress's trace context from each stream's metadata
	// into the request's context (TraceContextFrom).
	Trace bool

	serverOptions []grpc.ServerOption // more, for tests (a stats handler)
}

// Server is the egress end of the tunnel.
type Server struct {
	tunnelv1.UnimplementedTunnelServer
	cfg      ServerConfig
	log      *slog.Logger
	inflight atomic.Int64
	draining atomic.Bool
	// handshakes holds a token per connection in its handshake.
	handshakes chan struct{}
	// lastRefusal is when a refused handshake was last logged (unix ns).
	lastRefusal atomic.Int64
	// httpServer is put in each request's context under http.ServerContextKey:
	// httputil.ReverseProxy aborts a response that breaks mid-body only when
	// it runs under an http.Server, and the egress must abort, never end cleanly.
	httpServer *http.Server
}

// NewServer returns a tunnel server; register it with GRPCServer.
func NewServer(cfg ServerConfig) *Server {
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = 1000
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = 256
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log, httpServer: &http.Server{}, handshakes: make(chan struct{}, cfg.MaxHandshakes)}
}

// GRPCServer returns a gRPC server with the tunnel service registered, its
// stream cap (HTTP/2 rapid-reset mitigation), keepalive policy and
// handshake bounds set.
func (s *Server) GRPCServer() *grpc.Server {
	// The per-connection HTTP/2 cap sits above the node's in-flight limit:
	// at an equal cap a client queues its extra streams until one ends,
	// instead of hearing ResourceExhausted at once and trying elsewhere.
	streamCap := s.cfg.MaxStreams * 2
	if streamCap < s.cfg.MaxStreams {
		streamCap = math.MaxUint32
	}
	ka := s.cfg.Keepalive.orDefault()
	opts := []grpc.ServerOption{
		grpc.MaxConcurrentStreams(streamCap),
		// Below every client's interval, so pings are never too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: serverMinPing, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: ka.Interval, Timeout: ka.Timeout}),
		// grpc-go's default is 120 s: silent connections would be held that long.
		grpc.ConnectionTimeout(s.cfg.HandshakeTimeout),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		grpc.Creds(s.handshakeCreds()),
		// Exchanges run on long-lived workers whose stacks have grown to
		// the proxy's depth, not on a fresh goroutine that grows its stack
		// (copying it) on each exchange; a stream that finds every worker
		// busy gets its own goroutine, as without the option.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	}
	g := grpc.NewServer(append(opts, s.cfg.serverOptions...)...)
	tunnelv1.RegisterTunnelServer(g, s)
	return g
}

func (s *Server) handshakeCreds() credentials.TransportCredentials {
	c := &handshakeCreds{TransportCredentials: s.cfg.TLS, slots: s.handshakes, refused: s.refusedHandshake}
	if c.TransportCredentials == nil {
		c.TransportCredentials, c.plaintext = insecure.NewCredentials(), true
	}
	return c
}

// refusedHandshake logs, at most once a minute, that connections are being
// refused: a flood must not flood the log too.
func (s *Server) refusedHandshake() {
	now, last := time.Now().UnixNano(), s.lastRefusal.Load()
	if now-last < int64(time.Minute) || !s.lastRefusal.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("tunnel: refusing new connections: too many in their handshake (tunnel.max_handshakes)",
		"max_handshakes", s.cfg.MaxHandshakes, "handshake_timeout", s.cfg.HandshakeTimeout)
}

// InFlight is the number of exchanges being served.
func (s *Server) InFlight() int64 { return s.inflight.Load() }

// SetDraining makes the server refuse new streams with Unavailable, which an
// ingress may retry elsewhere because no provider was contacted.
func (s *Server) SetDraining(v bool) { s.draining.Store(v) }

// Exchange serves one tunnelled HTTP exchange.
func (s *Server) Exchange(stream tunnelv1.Tunnel_ExchangeServer) (err error) {
	defer func() {
		if s.cfg.OnStream != nil {
			s.cfg.OnStream(status.Code(err))
		}
	}()
	ctx := stream.Context()
	if !s.authorized(ctx) {
		return status.Error(codes.Unauthenticated, "missing or wrong tunnel token")
	}
	if s.draining.Load() {
		return status.Error(codes.Unavailable, "egress is draining")
	}
	if n := s.inflight.Add(1); n > int64(s.cfg.MaxStreams) {
		s.inflight.Add(-1)
		return status.Errorf(codes.ResourceExhausted, "egress at its limit of %d streams", s.cfg.MaxStreams)
	}
	defer s.inflight.Add(-1)
	// Send headers now: until it sees them, the client buffers the request
	// body for a transparent retry.
	if err := stream.SendHeader(acceptHeader); err != nil {
		return err
	}
	f, err := stream.Recv()
	if err != nil {
		return err
	}
	head := f.GetRequest()
	if head == nil {
		return status.Error(codes.InvalidArgument, "first frame is not a request head (an ingress of another llmesh version?)")
	}
	if head.Format != Format {
		return status.Errorf(codes.Unimplemented, "tunnel wire format %d is not supported: this egress speaks %d (run the same llmesh version on ingress and egress nodes)", head.Format, Format)
	}
	req, err := s.buildRequest(ctx, head)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	switch {
	case head.End:
		// The whole body came in the head: no goroutine, no pipe.
		setWholeBody(req, head.Body)
	default:
		pr, pw := io.Pipe()
		defer pr.CloseWithError(errExchangeDone)
		go receiveBody(stream, pw)
		if head.ContentLength != 0 {
			req.Body = pr
		}
	}

	// The last moment to learn that the ingress gave up on this exchange
	// (tunnel.accept_timeout ran out before our headers reached it, and it
	// may send the request elsewhere): past this line the provider is
	// called. See Conn.awaitAcceptance for the window that remains.
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	w := &streamWriter{stream: stream, header: make(http.Header), endInHead: head.ResponseEnd}
	if aborted := s.serve(w, req); aborted {
		return status.Error(codes.Aborted, "upstream response broke off")
	}
	if w.err != nil {
		return w.err
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.end()
}

// acceptHeader is the stream header an egress sends as it accepts an
// exchange: it reads whole requests in their heads. Shared and never
// written to (grpc-go keeps it as the stream's header).
var acceptHeader = metadata.MD{endInHeadKey: []string{"1"}}

// setWholeBody makes b, received whole, req's body. GetBody says to the
// proxy that the body is in memory: it cannot stall, and needs no pace.
func setWholeBody(req *http.Request, b []byte) {
	req.ContentLength = int64(len(b))
	if len(b) == 0 {
		req.Body = http.NoBody
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

var errExchangeDone = errors.New("tunnel: exchange finished")

// serve runs the handler and reports whether it aborted the response.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				s.log.Error("tunnel: handler panic", "panic", v)
			}
			aborted = true
		}
	}()
	s.cfg.Handler.ServeHTTP(w, r)
	return false
}

// buildRequest turns a request head into the request the proxy handler
// serves, at "/{provider}{path}". The handler re-validates all of it: the
// egress trusts nothing an ingress says.
func (s *Server) buildRequest(ctx context.Context, head *tunnelv1.RequestHead) (*http.Request, error) {
	if !httpguts.ValidHeaderFieldName(head.Method) {
		return nil, fmt.Errorf("invalid method")
	}
	if strings.ContainsAny(head.Provider, "/?#%\\") || (len(head.Path) > 0 && head.Path[0] != '/') {
		return nil, fmt.Errorf("invalid provider or path")
	}
	target := "/" + head.Provider + string(head.Path)
	if len(head.RawQuery) > 0 {
		target += "?" + string(head.RawQuery)
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("invalid path")
	}
	for _, kv := range head.Headers {
		if !httpguts.ValidHeaderFieldName(kv.GetName()) {
			return nil, fmt.Errorf("invalid header name")
		}
		for _, b := range kv.Values {
			// obs-text (bytes 0x80-0xFF) is allowed, as Go's server allows it.
			if !httpguts.ValidHeaderFieldValue(stringOf(b)) {
				return nil, fmt.Errorf("invalid value for header %s", kv.Name)
			}
		}
	}
	h := decodeHeader(head.Headers)
	contentLength := head.ContentLength
	if contentLength < 0 {
		contentLength = -1 // the one "unknown" value net/http knows
	}
	ctx = context.WithValue(ctx, http.ServerContextKey, s.httpServer)
	if head.RequestId != "" {
		ctx = WithRequestID(ctx, head.RequestId)
	}
	if head.InjectKey {
		ctx = WithInjectKey(ctx)
	}
	if s.cfg.Trace {
		ctx = withIncomingTrace(ctx)
	}
	req := (&http.Request{
		Method:        head.Method,
		URL:           u,
		RequestURI:    target,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: contentLength,
	}).WithContext(ctx)
	if p, ok := peer.FromContext(ctx); ok {
		req.RemoteAddr = p.Addr.String()
	}
	return req, nil
}

// withIncomingTrace copies the stream's trace context metadata into ctx.
func withIncomingTrace(ctx context.Context) context.Context {
	first := func(key string) string {
		if vs := metadata.ValueFromIncomingContext(ctx, key); len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	tc := TraceContext{Parent: first("traceparent")}
	if tc.Parent == "" {
		return ctx
	}
	tc.State = first("tracestate")
	return WithTraceContext(ctx, tc)
}

// receiveBody copies body frames into pw until End. It is the stream's only
// receiver; pw.Write blocks until the handler reads, so a slow provider slows
// the ingress down (backpressure) instead of filling memory.
func receiveBody(stream tunnelv1.Tunnel_ExchangeServer, pw *io.PipeWriter) {
	for {
		f, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the ingress closed without End
			}
			pw.CloseWithError(err)
			return
		}
		switch k := f.Kind.(type) {
		case *tunnelv1.Frame_Body:
			if _, err := pw.Write(k.Body); err != nil {
				return
			}
		case *tunnelv1.Frame_End:
			pw.Close()
			return
		default:
			pw.CloseWithError(fmt.Errorf("tunnel: %w: unexpected frame in request body", ErrProtocol))
			return
		}
	}
}

// streamWriter is the http.ResponseWriter of a tunnelled exchange: each
// Write goes out at once as body frames, so SSE is never held back. A small
// response of known length (at most WholeBody) to an ingress that reads it
// whole is held instead, and sent in one frame when the handler returns.
type streamWriter struct {
	stream      tunnelv1.Tunnel_ExchangeServer
	header      http.Header
	wroteHeader bool
	err         error
	endInHead   bool // the ingress reads a whole response in its head

	held *tunnelv1.ResponseHead // the head not sent yet, with the body so far
}

func (w *streamWriter) Header() http.Header { return w.header }

func (w *streamWriter) WriteHeader(code int) {
	// 1xx responses are informational: the final head follows.
	if w.wroteHeader || code < 200 {
		return
	}
	w.wroteHeader = true
	// Encoded now: the handler may change its header map later (trailers).
	head := &tunnelv1.ResponseHead{Format: Format, Status: int32(code), Headers: encodeHeader(w.header)}
	if w.endInHead {
		if n := contentLength(w.header); n >= 0 && n <= WholeBody {
			head.Body = make([]byte, 0, n)
			w.held = head
			return
		}
	}
	w.err = w.stream.Send(&tunnelv1.Frame{Kind: &tunnelv1.Frame_Response{Response: head}})
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil || len(p) == 0 {
		return 0, w.err
	}
	if w.held != nil {
		if len(w.held.Body)+len(p) <= WholeBody {
			// A copy: p is the caller's, and the frame is sent later.
			w.held.Body = append(w.held.Body, p...)
			return len(p), nil
		}
		w.release()
		if w.err != nil {
			return 0, w.err
		}
	}
	// p is the caller's (the proxy's pooled copy buffer) and grpc-go may
	// read a message after Send returns: the frames point into one copy of
	// p that is never touched again.
	data := bytes.Clone(p)
	written := 0
	for w.err == nil && written < len(data) {
		n := min(len(data)-written, FrameSize)
		if w.err = w.stream.Send(chunkFrame(data[written : written+n : written+n])); w.err == nil {
			written += n
		}
	}
	return written, w.err
}

// release sends a held head and the body held with it, as a head frame and
// a body frame: the response turned out larger than it said, or is flushed.
func (w *streamWriter) release() {
	head := w.held
	w.held = nil
	body := head.Body
	head.Body = nil
	w.err = w.stream.Send(&tunnelv1.Frame{Kind: &tunnelv1.Frame_Response{Response: head}})
	if w.err == nil && len(body) > 0 {
		w.err = w.stream.Send(chunkFrame(body))
	}
}

// end finishes a response the handler completed: a held one in a single
// frame, else with End and the trailers.
func (w *streamWriter) end() error {
	trailers := encodeHeader(w.trailers())
	if head := w.held; head != nil {
		w.held = nil
		head.End, head.Trailers = true, trailers
		return w.stream.Send(&tunnelv1.Frame{Kind: &tunnelv1.Frame_Response{Response: head}})
	}
	return w.stream.Send(finalFrame(trailers))
}

// FlushError makes http.ResponseController flushes succeed: every Write is
// already on the wire, and a held response is sent.
func (w *streamWriter) FlushError() error {
	if w.held != nil && w.err == nil {
		w.release()
	}
	return w.err
}

// trailers collects trailer values the handler set, announced ones and
// those under http.TrailerPrefix.
func (w *streamWriter) trailers() http.Header {
	t := make(http.Header)
	for _, v := range w.header.Values("Trailer") {
		for k := range strings.SplitSeq(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if vs, ok := w.header[k]; ok && k != "" {
				t[k] = vs
			}
		}
	}
	for k, vs := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			t[http.CanonicalHeaderKey(name)] = vs
		}
	}
	return t
}
