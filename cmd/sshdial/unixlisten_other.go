//go:build !unix

package main

import "net"

// listenUnixPrivate listens on a unix socket at path. Windows has no umask:
// the socket file takes the access control list of its directory.
func listenUnixPrivate(path string) (net.Listener, error) {
	return net.Listen("unix", path)
}
