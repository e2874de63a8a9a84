package sshdial

import (
	"context"
	"net"
	"net/http"
	"time"
)

// HTTPTransport returns a new *http.Transport with the settings of
// http.DefaultTransport (timeouts, idle pool, HTTP/2 attempted over TLS)
// whose connections are dialed through the SSH server. Proxies from the
// environment are not used: the SSH server is the way out. The caller owns
// the Transport and may change it before use.
func (d *Dialer) HTTPTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = d.DialContext
	t.ForceAttemptHTTP2 = true
	return t
}

// HTTPClient returns a new *http.Client over HTTPTransport. It has no overall
// Timeout; set one if the requests need it.
func (d *Dialer) HTTPClient() *http.Client {
	return &http.Client{Transport: d.HTTPTransport()}
}

// DialTCPContext dials address over "tcp". Its signature is the one that
// grpc.WithContextDialer and go-sql-driver/mysql's RegisterDialContext take:
//
//	grpc.NewClient("passthrough:///db.internal:443", grpc.WithContextDialer(d.DialTCPContext), ...)
//	mysql.RegisterDialContext("ssh", d.DialTCPContext) // DSN "user@ssh(db.internal:3306)/app"
func (d *Dialer) DialTCPContext(ctx context.Context, address string) (net.Conn, error) {
	return d.DialContext(ctx, "tcp", address)
}

// DialTimeout is Dial bounded by timeout (zero means no bound). With Dial it
// makes a Dialer satisfy lib/pq's pq.Dialer, for pq.DialOpen.
func (d *Dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		return d.Dial(network, address)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

// LookupHost returns host unchanged, so that a client that resolves names
// itself before dialing leaves them for the SSH server to resolve. Its
// signature is pgx's LookupFunc:
//
//	cfg.LookupFunc = d.LookupHost // postgres://db.internal/app: db.internal is resolved behind the server
//	cfg.DialFunc = d.DialContext
//
// It takes no time and sends nothing.
func (d *Dialer) LookupHost(ctx context.Context, host string) ([]string, error) {
	return []string{host}, nil
}
