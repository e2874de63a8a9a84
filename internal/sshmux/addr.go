package sshmux

import (
	"net"
	"net/netip"
	"strconv"
)

// Addr is the address of a forward's target when its host is a name: the
// name is resolved by the SSH server, not here.
type Addr struct {
	Host string
	Port int
}

// Network returns "tcp".
func (a *Addr) Network() string { return "tcp" }

// String returns host:port.
func (a *Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// targetAddr returns a *net.TCPAddr for an IP address host, else an *Addr.
func targetAddr(host string, port int) net.Addr {
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))
	}
	return &Addr{Host: host, Port: port}
}
