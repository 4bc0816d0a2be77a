package tunnel

import (
	"context"
	"net"
	"syscall"
)

// The tunnel is built for long links: an ingress in Hong Kong and its
// egress in California are 150 ms apart. These settings let a fresh
// connection run at the link's rate from its first byte, and keep small
// exchanges from queueing behind a bulk upload on the shared connection.
const (
	// Flow-control windows, fixed on both ends. grpc-go starts at 64 KiB
	// and grows them by estimate, which holds a fresh connection near
	// 64 KiB per round trip (about 3.5 Mbit/s across 150 ms) for its first
	// megabytes. 4 MiB per stream carries 200 Mbit/s at 150 ms; the
	// connection's 16 MiB is shared by its streams. They bound what a peer
	// may send ahead, not memory that is allocated.
	streamWindow = 4 << 20
	connWindow   = 16 << 20

	// notSentLowat bounds the bytes a tunnel connection leaves unsent in
	// the kernel's socket buffer. Without it, a bulk upload fills megabytes
	// of socket buffer, and every other exchange's frames wait behind them
	// for as long as the link takes to drain them; with it, grpc's writer
	// keeps the queue and interleaves the streams' frames.
	notSentLowat = 128 << 10
)

// dialTCP dials the tunnel's TCP connections with notSentLowat set.
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = setNotSentLowat(fd, notSentLowat) })
		return err
	}}
	return d.DialContext(ctx, "tcp", addr)
}
