package main

import "github.com/sshdial/sshdial/internal/proxysrv"

// The -D and --http-proxy servers, from internal/proxysrv.
type (
	proxyServer      = proxysrv.Server
	proxyTunnelEvent = proxysrv.TunnelEvent
)
