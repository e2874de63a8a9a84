/*
Command sshdial keeps SSH tunnels up: local (-L), remote (-R) and dynamic
(-D, SOCKS4/5) forwards, an HTTP CONNECT proxy and ssh -W's stdio
tunnel, with OpenSSH's command-line syntax, ~/.ssh/config, known_hosts,
ssh-agent and identity files. It is "ssh -N" that survives a lost
connection: keepalives find it lost, it is made again when a tunnel needs
it, and remote forwards come back after it. It never runs a remote
command.

Usage:

	sshdial [-GgNqTvV] [-D [bind:]port] [-F configfile] [-i identity_file]
	        [-J jump[,jump]] [-L forward] [-l user] [-o option] [-p port] [-R forward]
	        [--http-proxy [bind:]port] [--status interval] [--grace duration]
	        [-S ctl_path] [-W host:port] destination
	sshdial demo

The destination is what ssh takes: [user@]host, ssh://[user@]host[:port]
or a Host of ~/.ssh/config; host:port works too. Options may be clustered
(-NvL8080:db:80), their values attached or separate, and the destination
may come before or after them. "sshdial demo" runs a tour of the forwards
on an embedded SSH server, on loopback only.

# Forwards

Each may be given several times.

	-L [bind:]port:host:hostport
		Listen here; each connection goes through the SSH server to
		host:hostport, a name the server resolves. -L [bind:]port:/remote.sock
		reaches a unix socket on the server; /local.sock:host:hostport and
		/local.sock:/remote.sock listen on a local socket (mode 0600).
	-R [bind:]port:host:hostport
		The SSH server listens (port 0: it chooses and the log says which);
		connections come to host:hostport from here. -R [bind:]port:/local.sock
		and /remote.sock:host:hostport work too. -R [bind:]port alone is
		remote dynamic forwarding: this machine serves SOCKS4/5 on the
		connections made to the server's port, dialing from here.
	-D [bind:]port
		A SOCKS5 (CONNECT, no authentication) and SOCKS4/4a proxy whose
		names are resolved by the SSH server.
	--http-proxy [bind:]port
		An HTTP CONNECT proxy, for HTTPS_PROXY, curl -x and browsers.
	-W host:port
		Standard input and output are one tunnel to host:port (or -W /socket)
		through the SSH server, as ssh -W, for ProxyCommand: the end of
		standard input half-closes the tunnel, the target's end exits 0, a
		tunnel that cannot be opened exits 255. Alone, and quiet unless -v.

-L, -D and --http-proxy listen on 127.0.0.1 unless a bind address is
given; "*" or an empty one (:8080:db:80) means every interface, and -g
(or -o GatewayPorts=yes) makes that the default. -R asks the server for
its loopback unless a bind address is given; the server's GatewayPorts
decides. A port may be a service name (-L 8080:db:postgresql, -p ssh),
as in ssh.

# Connection

	-l user, -p port
		The user and port, as in ssh: the first of -l, -o User and the
		destination's user@ names the user, and the first of -p, -o Port and
		the destination's port names the port.
	-i identity_file
		Offered before the config's IdentityFile (ssh-agent's keys too).
	-J jump[,jump]
		ProxyJump; -J none ignores the config's.
	-F configfile
		Read this file instead of ~/.ssh/config and /etc/ssh/ssh_config;
		-F none reads none.
	-o Key=Value, -o "Key Value"
		A config line read before the config files, so its value wins, as
		with ssh -o; the first of a key wins. Every key sshdial uses works
		(sshdial -h lists them); other keys ssh knows are accepted and
		ignored, unknown ones are an error. -o, -i and -J apply to the
		destination, not to its jump hosts.
	-S ctl_path
		The control socket of a running OpenSSH ControlMaster (ssh -M), as
		ssh -S: -L, -D, --http-proxy and -W tunnels go through it, with no
		login of their own; when none answers, sshdial logs in by itself
		(and says so), and -R always does. -S none turns sharing off. The
		config's ControlPath works the same, unless its ControlMaster is yes
		or ask (ssh then uses no running master). sshdial never becomes a
		master. Each -L and -D connection is handed to the master, which
		reads and writes it itself (no copy in sshdial, as fast as ssh -L):
		-D then answers a SOCKS request at once, as ssh -D does, and a
		target that cannot be reached resets the connection instead of an
		error code; the client reads the target's EOF when the master has
		ended the whole tunnel (OpenSSH ends it on the target's EOF), and a
		master that dies resets the connection, once the client has read
		what the master had sent (so does one told ssh -O stop, for the
		last tunnel it finishes: it exits with it); a client of a -L on a
		Unix socket reads EOF instead, as a Unix socket carries no reset.
		The tunnel's byte counts (Linux) are known when it ends.
	-G
		Print the configuration evaluated for the destination, as ssh -G
		does for the keys sshdial uses, and exit.
	-4, -6
		IPv4 or IPv6 only, for the SSH server and for local listeners, which
		then bind 127.0.0.1 or ::1.

The config files are read as ssh reads them: Host and every Match
criterion (Match exec runs its command), Include, IgnoreUnknown,
canonicalization. Host keys are checked against known_hosts: an unknown
key is refused, with its fingerprint and the ssh-keyscan line that adds
it, unless StrictHostKeyChecking is accept-new or no (no is taken as
accept-new, with a warning); a changed or revoked key is always refused,
which is stricter than ssh.

Encrypted identity files, passwords and keyboard-interactive questions
(one-time codes) are asked on the terminal for the first connection,
without echo (never with -o BatchMode=yes). A passphrase is kept in memory
for reconnects; a password or code is not, so a reconnect that needs one
fails and logs why.

# Operation

	-v, -vv
		Per-tunnel events; -vv adds the proxies' handshakes.
	-q
		Errors only.
	--status interval
		Write the status summary to stderr every interval; on unix, SIGUSR1
		writes it at once. Its first line says whether the SSH connection
		is up, or that tunnels go through a ControlMaster (-S).
	--grace duration
		On SIGINT or SIGTERM, stop listening and let open tunnels finish for
		this long (default 10s); a second signal ends them at once.
	-f
		Go to the background once the forwards are up, as ssh -f: passphrases
		are asked and failures reported first. Not on Windows.
	-N, -T, -n, -C
		Accepted and ignored: always -N, no compression.
	-V, -h
		The version; the help, with the config keys.

Keepalives are on (ServerAliveInterval 15s and ServerAliveCountMax 3 unless
set). A lost SSH connection is made again when a tunnel needs it, with
backoff; -L, -D and --http-proxy keep listening meanwhile, and a new
connection waits up to ConnectTimeout (default 30s) for it. Open tunnels of
a lost connection end with a reset, never a clean EOF (on a Unix-socket -L,
which carries no reset, with EOF). -R forwards are
requested again after a reconnect, on the same port; one the server
refuses is asked again for three minutes, since the lost connection's
session on the server may still hold the port.

A forward that cannot be set up at start, or a -R forward still refused
three minutes after a reconnect, ends sshdial with exit status 3, as with
ExitOnForwardFailure=yes. With -o ExitOnForwardFailure=no it is logged
while the others run: one that failed at start is retried with backoff,
one lost after a reconnect is shown as failed.

GOGC is 400 unless set (set GOGC=100 or GOMEMLIMIT for a smaller heap).

# Exit status

	0    clean shutdown (SIGINT, SIGTERM), -h, -V, sshdial demo
	1    any other error
	2    bad command line
	3    a forward could not be set up at start, or was lost for good after a reconnect
	255  connecting, the host key check or authentication failed at start, as ssh,
	     or SIGINT or SIGTERM came before the connection was up

# Examples

A database behind a bastion, on localhost:5432:

	sshdial -L 5432:db.internal:5432 deploy@bastion.example.com

A SOCKS proxy for a browser, and an HTTP proxy for tools that want one:

	sshdial -D 1080 --http-proxy 3128 bastion

As the ProxyCommand of ssh itself:

	ssh -o ProxyCommand='sshdial -W %h:%p bastion' inner-host
*/
package main
