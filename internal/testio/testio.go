package testio

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
)

// Buffer is a bytes.Buffer that servers may write to while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Logger returns a text logger that writes to b.
func (b *Buffer) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// StallingBody is a request body that yields n zero bytes, then nothing
// until ctx ends or it is closed: a client that declared more than it sends.
type StallingBody struct {
	ctx    context.Context
	left   int
	once   sync.Once
	closed chan struct{}
}

// NewStallingBody returns a body that stalls after n bytes.
func NewStallingBody(ctx context.Context, n int) *StallingBody {
	return &StallingBody{ctx: ctx, left: n, closed: make(chan struct{})}
}

func (b *StallingBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		select {
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		case <-b.closed:
			return 0, io.ErrClosedPipe
		}
	}
	n := min(len(p), b.left)
	clear(p[:n])
	b.left -= n
	return n, nil
}

// Close unblocks a stalled Read.
func (b *StallingBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}
