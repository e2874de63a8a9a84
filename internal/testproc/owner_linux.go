package testproc

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// listensOn says whether process pid holds the socket that listens on
// addr (ip:port, or a wildcard address with that port). known is false
// when /proc cannot tell (addr is not a numeric address, or the kernel's
// socket tables cannot be read), and then owned means nothing.
func listensOn(pid int, addr string) (owned, known bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false, false
	}
	// A socket of either family may take the connections: one on [::]
	// takes 127.0.0.1's too, unless it is IPv6-only.
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := listeningInodes(table, ap, inodes); err != nil {
			return false, false
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		// It has exited (and perhaps been reaped) since it was
		// started: it holds nothing.
		return false, true
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return true, true
		}
	}
	return false, true
}

// listeningInodes adds to inodes those of the sockets in table (the format
// of /proc/net/tcp) that listen on ap's port at ap's address or at a
// wildcard address.
func listeningInodes(table string, ap netip.AddrPort, inodes map[string]bool) error {
	f, err := os.Open(table)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // the heading
	for s.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		fields := strings.Fields(s.Text())
		if len(fields) < 10 || fields[3] != "0A" { // TCP_LISTEN
			continue
		}
		local, err := parseProcAddr(fields[1])
		if err != nil {
			return err
		}
		if local.Port() == ap.Port() && (local.Addr() == ap.Addr().Unmap() || local.Addr().IsUnspecified()) {
			inodes[fields[9]] = true
		}
	}
	return s.Err()
}

// parseProcAddr parses an address of /proc/net/tcp or tcp6: the IP address
// in hex as 32-bit words in the host's byte order, a colon, and the port
// in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(ipHex)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) || len(portHex) != 4 {
		return netip.AddrPort{}, fmt.Errorf("testproc: bad address %q in /proc", s)
	}
	port, err := hex.DecodeString(portHex)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("testproc: bad address %q in /proc", s)
	}
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), binary.BigEndian.Uint16(port)), nil
}
