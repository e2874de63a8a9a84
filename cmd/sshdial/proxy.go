package main

// The -D and --http-proxy servers. They come from proxysrv behind these
// names, so that switching from the stand-in (proxysrv_shim.go) to
// internal/proxysrv is this file alone.

type (
	proxyServer      = shimServer
	proxyTunnelEvent = shimTunnelEvent
)
