package wan

import (
	"errors"
	"net/netip"
)

// ErrUnavailable: this machine cannot host the emulated link (not root, no
// ip command, no /dev/net/tun). Tests skip on it.
var ErrUnavailable = errors.New("wan: link emulation unavailable")

// The addresses of the two hosts, inside their own namespaces only. B may
// get more (AddAddr) for a second node on the far side.
var (
	AddrA  = netip.MustParseAddr("10.201.0.1")
	AddrB  = netip.MustParseAddr("10.201.0.2")
	prefix = 24
)

// Host is one side of the link: a network namespace this package created,
// with its TUN device and address.
type Host struct {
	NS   string     // namespace name, for ip netns exec
	Addr netip.Addr // its address on the link
	dev  string
}

// Hosts are two namespaces joined by an emulated link.
type Hosts struct {
	A, B Host
	Link *Link
}

// Close stops the link and removes both namespaces.
func (h *Hosts) Close() error {
	return errors.Join(h.Link.Close(), h.removeNamespaces())
}
