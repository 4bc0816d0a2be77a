package wan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Check reports why the link cannot be emulated here, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (network namespaces and TUN devices)", ErrUnavailable)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no ip command (iproute2)", ErrUnavailable)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("%w: no /dev/net/tun", ErrUnavailable)
	}
	return nil
}

// runs numbers the Hosts of this process, for unique names.
var runs atomic.Int32

// Start creates hosts A and B joined by a link shaped by cfg. Close removes
// them.
func Start(cfg Config) (_ *Hosts, err error) {
	if err := Check(); err != nil {
		return nil, err
	}
	n := runs.Add(1)
	id := fmt.Sprintf("%d-%d", os.Getpid(), n)
	dev := fmt.Sprintf("lmw%xn%d", os.Getpid(), n) // ≤ 15 bytes (IFNAMSIZ) with its a or b
	h := &Hosts{
		A: Host{NS: "llmesh-wan-a-" + id, Addr: AddrA, dev: dev + "a"},
		B: Host{NS: "llmesh-wan-b-" + id, Addr: AddrB, dev: dev + "b"},
	}
	var devs []*os.File
	defer func() {
		if err != nil {
			for _, f := range devs {
				f.Close()
			}
			h.removeNamespaces()
		}
	}()
	for _, host := range []Host{h.A, h.B} {
		if err := ip("netns", "add", host.NS); err != nil {
			return nil, err
		}
		if err := ip("-n", host.NS, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
		// Created here, then moved: the file stays attached to the device.
		f, err := openTUN(host.dev)
		if err != nil {
			return nil, err
		}
		devs = append(devs, f)
		for _, args := range [][]string{
			{"link", "set", "dev", host.dev, "netns", host.NS},
			{"-n", host.NS, "addr", "add", fmt.Sprintf("%s/%d", host.Addr, prefix), "dev", host.dev},
			{"-n", host.NS, "link", "set", "dev", host.dev, "mtu", "1500", "up"},
		} {
			if err := ip(args...); err != nil {
				return nil, err
			}
		}
	}
	h.Link = NewLink(cfg, devs[0], devs[1])
	return h, nil
}

// AddAddr gives host B (or A) one more address on the link, for a second
// node on that side that can be cut alone.
func (h *Hosts) AddAddr(host Host, addr netip.Addr) error {
	return ip("-n", host.NS, "addr", "add", fmt.Sprintf("%s/%d", addr, prefix), "dev", host.dev)
}

// SetInitCwnd sets the initial congestion and receive windows (in
// segments) of the link's route on both hosts, as an operator tuning a long
// link would (ip route ... initcwnd N initrwnd N): connections opened after
// it start with that window.
func (h *Hosts) SetInitCwnd(n int) error {
	for _, host := range []Host{h.A, h.B} {
		network := netip.PrefixFrom(host.Addr, prefix).Masked()
		if err := ip("-n", host.NS, "route", "change", network.String(), "dev", host.dev, "proto", "kernel",
			"scope", "link", "src", host.Addr.String(), "initcwnd", strconv.Itoa(n), "initrwnd", strconv.Itoa(n)); err != nil {
			return err
		}
	}
	return nil
}

func (h *Hosts) removeNamespaces() error {
	var errs []error
	for _, host := range []Host{h.A, h.B} {
		if _, err := os.Stat("/var/run/netns/" + host.NS); err == nil {
			errs = append(errs, ip("netns", "del", host.NS))
		}
	}
	return errors.Join(errs...)
}

// Command returns a command that runs inside the host's namespace.
func (host Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", host.NS, name}, args...)...)
}

// Dial connects from inside the host's namespace.
func (host Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := host.do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen listens inside the host's namespace.
func (host Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := host.do(func() (err error) {
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// do runs fn on an OS thread that joined the host's namespace: sockets fn
// creates belong to it for good. The thread is never unlocked, so the
// runtime ends it with the goroutine instead of reusing it elsewhere.
func (host Host) do(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open("/var/run/netns/" + host.NS)
		if err != nil {
			done <- fmt.Errorf("wan: %w", err)
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("wan: setns %s: %w", host.NS, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("wan: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
