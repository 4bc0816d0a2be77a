package wan

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
)

// TestShaper: the model on a clock of its own: serialisation at the rate,
// then the delay; a full queue drops arrivals; no rate, only the delay.
func TestShaper(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	type arrival struct {
		at   time.Duration // after t0
		size int
		want time.Duration // delivery after t0; -1: tail-dropped
	}
	for _, tc := range []struct {
		name     string
		cfg      Config
		arrivals []arrival
	}{
		{"delay only", Config{Delay: 75 * ms}, []arrival{
			{0, 1500, 75 * ms}, {0, 1500, 75 * ms}, {10 * ms, 40, 85 * ms},
		}},
		{"serialised at the rate", Config{Delay: 10 * ms, Rate: 8000, Queue: 10_000}, []arrival{
			// 8000 bit/s: 500 bytes take 500 ms.
			{0, 500, 510 * ms}, {0, 500, 1010 * ms}, {2000 * ms, 500, 2510 * ms},
		}},
		{"an idle bottleneck starts at the arrival", Config{Rate: 8000, Queue: 10_000}, []arrival{
			{0, 100, 100 * ms}, {500 * ms, 100, 600 * ms},
		}},
		{"tail drop", Config{Delay: 10 * ms, Rate: 8000, Queue: 1000}, []arrival{
			{0, 500, 510 * ms},         // sent at once: 500 bytes backlog until 500 ms
			{0, 500, 1010 * ms},        // 500 + 500 ≤ 1000: queued
			{0, 500, -1},               // 1000 + 500 > 1000: dropped
			{500 * ms, 500, 1510 * ms}, // one left the queue: room again
		}},
		{"default queue: one bandwidth-delay product", Config{Delay: 500 * ms, Rate: 8000}, []arrival{
			// 1000 bytes/s × 1 s RTT = 1000 bytes.
			{0, 600, 1100 * ms}, {0, 400, 1500 * ms}, {0, 1, -1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newShaper(tc.cfg, 1)
			for i, a := range tc.arrivals {
				at, v := s.admit(t0.Add(a.at), a.size)
				switch {
				case a.want < 0 && v != tailDropped:
					t.Fatalf("packet %d: %v at %v, want it dropped", i, v, at.Sub(t0))
				case a.want >= 0 && (v != delivered || !at.Equal(t0.Add(a.want))):
					t.Fatalf("packet %d: verdict %v at %v, want delivered at %v", i, v, at.Sub(t0), a.want)
				}
			}
		})
	}
}

// TestShaperLoss: the loss rate holds over many packets, and a seed repeats
// the same losses.
func TestShaperLoss(t *testing.T) {
	cfg := Config{Delay: time.Millisecond, Loss: 0.01, Seed: 7}
	pattern := func() []bool {
		s := newShaper(cfg, 1)
		out := make([]bool, 100_000)
		for i := range out {
			_, v := s.admit(time.Unix(0, int64(i)), 100)
			out[i] = v == lost
		}
		return out
	}
	a, b := pattern(), pattern()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("packet %d: the same seed lost different packets", i)
		}
		if a[i] {
			n++
		}
	}
	if n < 800 || n > 1200 {
		t.Fatalf("lost %d of 100000 at 1 %%", n)
	}
}

// chanDevice is a Device made of channels: what a test puts in in comes
// out of the link's other end.
type chanDevice struct {
	in, out chan []byte
	done    chan struct{}
	once    sync.Once
}

func newChanDevice() *chanDevice {
	return &chanDevice{in: make(chan []byte, 16), out: make(chan []byte, 16), done: make(chan struct{})}
}

func (d *chanDevice) Read(p []byte) (int, error) {
	select {
	case b := <-d.in:
		return copy(p, b), nil
	case <-d.done:
		return 0, errors.New("closed")
	}
}

func (d *chanDevice) Write(p []byte) (int, error) {
	select {
	case d.out <- append([]byte(nil), p...):
		return len(p), nil
	case <-d.done:
		return 0, errors.New("closed")
	}
}

func (d *chanDevice) Close() error { d.once.Do(func() { close(d.done) }); return nil }

// ipv4 is a 20-byte IPv4 header from src to dst, and one byte of payload
// that tells packets apart.
func ipv4(src, dst netip.Addr, tag byte) []byte {
	p := make([]byte, 21)
	p[0] = 0x45
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	p[20] = tag
	return p
}

// TestLinkForwards: packets cross in both directions, in order, never
// before the delay; a cut address loses everything to and from it.
func TestLinkForwards(t *testing.T) {
	a, b := newChanDevice(), newChanDevice()
	const delay = 20 * time.Millisecond
	l := NewLink(Config{Delay: delay}, a, b)
	defer l.Close()
	other := netip.MustParseAddr("10.201.0.3")

	start := time.Now()
	for i := range byte(3) {
		a.in <- ipv4(AddrA, AddrB, i)
	}
	b.in <- ipv4(AddrB, AddrA, 9)
	for i := range byte(3) {
		if p := <-b.out; p[20] != i {
			t.Fatalf("A→B packet %d arrived as %d: out of order", i, p[20])
		}
	}
	if p := <-a.out; p[20] != 9 {
		t.Fatalf("B→A packet %d", p[20])
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("packets crossed in %v, under the %v delay", took, delay)
	}

	l.Cut(other)
	a.in <- ipv4(AddrA, other, 1)
	b.in <- ipv4(other, AddrA, 2)
	a.in <- ipv4(AddrA, AddrB, 3) // not cut: still crosses
	if p := <-b.out; p[20] != 3 {
		t.Fatalf("got packet %d through a cut", p[20])
	}
	wait.Until(t, 5*time.Second, "both cut packets counted", func() bool {
		s := l.Stats()
		return s.AB.Cut == 1 && s.BA.Cut == 1
	})
	l.Restore(other)
	a.in <- ipv4(AddrA, other, 4)
	if p := <-b.out; p[20] != 4 {
		t.Fatalf("after Restore got packet %d", p[20])
	}
	// The writer counts a packet once its Write returned.
	wait.For(t, 5*time.Second, func() error {
		if s := l.Stats(); s.AB.Delivered != 5 || s.BA.Delivered != 1 || s.AB.Lost+s.AB.TailDropped != 0 {
			return fmt.Errorf("stats %+v, want 5 A→B and 1 B→A delivered", s)
		}
		return nil
	})
}
