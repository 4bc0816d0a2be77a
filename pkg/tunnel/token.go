package tunnel

import (
	"context"
	"crypto/subtle"

	"google.golang.org/grpc/metadata"
)

// The shared tunnel token (tunnel.token): the ingress sends it with every
// stream, the egress refuses streams without it.

// tokenKey is the gRPC metadata key that carries the shared tunnel token.
const tokenKey = "llmesh-token"

// tokenCredentials sends the tunnel token with every stream.
type tokenCredentials struct {
	token  string
	secure bool
}

func (t tokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{tokenKey: t.token}, nil
}

// RequireTransportSecurity is false only when the operator chose a plaintext
// tunnel (tunnel.insecure), where the token is all the egress can check.
func (t tokenCredentials) RequireTransportSecurity() bool { return t.secure }

// tokenEqual compares in constant time, so the answer's timing says
// nothing about how much of a guess was right.
func tokenEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// authorized reports whether the stream in ctx carries the token, when the
// server requires one.
func (s *Server) authorized(ctx context.Context) bool {
	if s.cfg.Token == "" {
		return true
	}
	// The one key, not a copy of every key (FromIncomingContext): a map and
	// a slice per key on each exchange.
	got := metadata.ValueFromIncomingContext(ctx, tokenKey)
	return len(got) == 1 && tokenEqual(got[0], s.cfg.Token)
}
