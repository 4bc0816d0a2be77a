package tunnel

import (
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/sys/unix"
)

// TestServerWindows: the egress advertises the fixed stream window, so a
// fresh connection across an ocean does not start at 64 KiB.
func TestServerWindows(t *testing.T) {
	checkLeaks(t)
	_, addr := startEgress(t, ServerConfig{Handler: http.NotFoundHandler()})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	settings, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %T, want SETTINGS", f)
	}
	if v, ok := settings.Value(http2.SettingInitialWindowSize); !ok || v != streamWindow {
		t.Fatalf("initial window %d (%v), want %d", v, ok, streamWindow)
	}
}

// TestDialSetsNotSentLowat: the tunnel's connections leave at most
// notSentLowat bytes unsent in the kernel, so a bulk upload does not queue
// megabytes ahead of other exchanges.
func TestDialSetsNotSentLowat(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_NOTSENT_LOWAT is Linux's")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	conn, err := dialTCP(t.Context(), lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	raw.Control(func(fd uintptr) { got, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) })
	if err != nil || got != notSentLowat {
		t.Fatalf("TCP_NOTSENT_LOWAT = %d, %v; want %d", got, err, notSentLowat)
	}
}
