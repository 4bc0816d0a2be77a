package wan

import (
	"bufio"
	"errors"
	"io"
	"os"
	"slices"
	"testing"
	"time"
)

// startHosts starts the link or skips: it needs root, ip and /dev/net/tun.
func startHosts(t *testing.T, cfg Config) *Hosts {
	t.Helper()
	h, err := Start(cfg)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// echoServer listens in host B and echoes what it reads.
func echoServer(t *testing.T, h *Hosts) string {
	t.Helper()
	ln, err := h.B.Listen("tcp", h.B.Addr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrips connects from A to an echo server in B and times the connect
// (SYN, SYN-ACK) and n one-line round trips.
func roundTrips(t *testing.T, h *Hosts, addr string, n int) (connect time.Duration, rtts []time.Duration) {
	t.Helper()
	start := time.Now()
	c, err := h.A.Dial(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connect = time.Since(start)
	r := bufio.NewReader(c)
	for range n {
		start := time.Now()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, time.Since(start))
	}
	return connect, rtts
}

// transfer sends n bytes from A to a sink in B. It returns how long the
// sink took from its first byte to its last, and the payload rate (bits
// per second) it saw once warm had passed since its first byte: slow start
// is over by then.
func transfer(t *testing.T, h *Hosts, n int64, warm time.Duration) (time.Duration, float64) {
	t.Helper()
	ln, err := h.B.Listen("tcp", h.B.Addr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		took time.Duration
		rate float64
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { done <- r }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		var got, gotWarm int64
		var first, warmAt time.Time
		for got < n {
			m, err := c.Read(buf)
			now := time.Now()
			if got == 0 && m > 0 {
				first = now
			}
			if warmAt.IsZero() && got > 0 && now.Sub(first) >= warm {
				warmAt, gotWarm = now, got
			}
			got += int64(m)
			if err != nil {
				return
			}
		}
		end := time.Now()
		r.took = end.Sub(first)
		if !warmAt.IsZero() && end.After(warmAt) {
			r.rate = float64(got-gotWarm) * 8 / end.Sub(warmAt).Seconds()
		}
	}()
	c, err := h.A.Dial(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.CopyN(c, zeros{}, n); err != nil {
		t.Fatal(err)
	}
	r := <-done
	return r.took, r.rate
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestHostsBounds: across a short emulated link, with root, in make test:
// nothing crosses faster than the delay or the rate allow, and the hosts
// reach nothing but each other. Bounds only, so a busy machine cannot fail
// it; TestOceanLink checks the link reaches its figures.
func TestHostsBounds(t *testing.T) {
	cfg := Config{Delay: 10 * time.Millisecond, Rate: 40_000_000, Seed: 1}
	h := startHosts(t, cfg)
	addr := echoServer(t, h)
	connect, rtts := roundTrips(t, h, addr, 3)
	for _, d := range append(rtts, connect) {
		if d < cfg.RTT() {
			t.Fatalf("a round trip took %v, under the link's %v", d, cfg.RTT())
		}
	}
	const n = 1 << 20
	took, _ := transfer(t, h, n, 0)
	if floor := time.Duration(n * 8 * int64(time.Second) / cfg.Rate); took < floor*9/10 {
		t.Fatalf("%d bytes crossed in %v; at %d bit/s they take at least %v", n, took, cfg.Rate, floor)
	}
	t.Logf("connect %v, round trips %v, 1 MiB in %v; %+v", connect, rtts, took, h.Link.Stats())
}

// TestOceanLink measures the link make bench-wan uses (LLMESH_WAN=1): a
// round trip reads ~150 ms; without losses, a bulk transfer fills the
// 100 Mbit/s once slow start is over; and ~0.1 % of packets are lost.
func TestOceanLink(t *testing.T) {
	if os.Getenv("LLMESH_WAN") == "" {
		t.Skip("measures the emulated ocean link: run with LLMESH_WAN=1 (make bench-wan)")
	}
	cfg := Ocean
	h := startHosts(t, cfg)
	addr := echoServer(t, h)
	connect, rtts := roundTrips(t, h, addr, 10)
	med := median(rtts)
	t.Logf("connect %v, round trip median %v (link RTT %v)", connect.Round(time.Microsecond), med.Round(time.Microsecond), cfg.RTT())
	if med < cfg.RTT() || med > cfg.RTT()+10*time.Millisecond {
		t.Errorf("round trip median %v, want %v to %v", med, cfg.RTT(), cfg.RTT()+10*time.Millisecond)
	}

	// The rate, on a copy of the link without losses and with room for
	// BBR's probing (TCP answers every loss by slowing down, which is
	// TCP's doing, not the link's): 1448 payload bytes per 1500 on the
	// wire is 96.5 % of the rate at most.
	exact := cfg
	exact.Loss, exact.Queue = 0, 4<<20
	_, rate := transfer(t, startHosts(t, exact), 30<<20, 1500*time.Millisecond)
	t.Logf("without losses: %.1f Mbit/s of payload once warm (link %d Mbit/s)", rate/1e6, cfg.Rate/1_000_000)
	if rate < 0.9*float64(cfg.Rate) {
		t.Errorf("bulk transfer at %.1f Mbit/s, want ≥ 90 %% of %d", rate/1e6, cfg.Rate/1_000_000)
	}

	// On the lossy link itself: what TCP makes of it, and the losses.
	took, rate := transfer(t, h, 30<<20, 1500*time.Millisecond)
	s := h.Link.Stats().AB
	lossRate := float64(s.Lost) / float64(s.Delivered+s.Lost)
	t.Logf("with %.1f %% loss: 30 MiB in %v, %.1f Mbit/s once warm; A→B %+v (%.2f %% lost)",
		cfg.Loss*100, took.Round(time.Millisecond), rate/1e6, s, lossRate*100)
	if lossRate < cfg.Loss/3 || lossRate > cfg.Loss*3 {
		t.Errorf("lost %.3f %% of packets, want about %.1f %%", lossRate*100, cfg.Loss*100)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
