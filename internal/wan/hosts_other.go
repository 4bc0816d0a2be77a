//go:build !linux

package wan

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
)

// The link needs Linux network namespaces and TUN devices.

var errOS = fmt.Errorf("%w: needs Linux (network namespaces, TUN), this is %s", ErrUnavailable, runtime.GOOS)

// Check reports why the link cannot be emulated here.
func Check() error { return errOS }

// Start fails: see Check.
func Start(Config) (*Hosts, error) { return nil, errOS }

// AddAddr fails: see Check.
func (h *Hosts) AddAddr(Host, netip.Addr) error { return errOS }

// SetInitCwnd fails: see Check.
func (h *Hosts) SetInitCwnd(int) error { return errOS }

func (h *Hosts) removeNamespaces() error { return nil }

// Command runs nothing useful: see Check.
func (host Host) Command(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// Dial fails: see Check.
func (host Host) Dial(context.Context, string, string) (net.Conn, error) { return nil, errOS }

// Listen fails: see Check.
func (host Host) Listen(string, string) (net.Listener, error) { return nil, errOS }
