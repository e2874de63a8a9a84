package sshconfig

import "strings"

// kind says how a keyword's line is read.
type kind int

const (
	kIgnored kind = iota // known to ssh, not used by sshdial: accepted, arguments not checked
	kHost
	kMatch
	kInclude
	kIgnoreUnknown
	kHostName
	kUser
	kPort
	kIdentityFile
	kCertificateFile
	kIdentitiesOnly
	kIdentityAgent
	kProxyJump
	kProxyCommand
	kUserKnownHostsFile
	kGlobalKnownHostsFile
	kStrictHostKeyChecking
	kHostKeyAlias
	kServerAliveInterval
	kServerAliveCountMax
	kConnectTimeout
	kAddressFamily
	kBatchMode
	kExitOnForwardFailure
	kGatewayPorts
	kControlPath
	kControlMaster
	kCanonicalizeHostname
	kCanonicalDomains
	kCanonicalizeMaxDots
	kCanonicalizeFallbackLocal
	kTag
	kPreferredAuthentications
	kNumberOfPasswordPrompts
)

// Key describes one ssh_config keyword that sshdial uses: the list the
// README's table and the command's help are made from.
type Key struct {
	Name string // as ssh_config(5) spells it, e.g. "ServerAliveInterval"
	Doc  string // what sshdial does with it, one sentence
	kind kind
}

// Keys lists, in ssh_config(5)'s spelling, every keyword whose value
// sshdial uses; Resolve evaluates each as ssh(1) does. Every other keyword
// ssh knows is accepted and ignored.
var Keys = []Key{
	{"HostName", "the host to connect to; %h is the host as typed", kHostName},
	{"User", "the user to log in as", kUser},
	{"Port", "the port to connect to", kPort},
	{"IdentityFile", "private keys to offer (each line adds one; ~, %tokens and ${VAR} expanded)", kIdentityFile},
	{"CertificateFile", "certificates to offer with the keys", kCertificateFile},
	{"IdentitiesOnly", "offer only the configured keys, not every key of the agent", kIdentitiesOnly},
	{"IdentityAgent", "the ssh-agent socket, SSH_AUTH_SOCK, or none", kIdentityAgent},
	{"ProxyJump", "jump hosts to connect through", kProxyJump},
	{"ProxyCommand", "a command whose standard input and output carry the connection", kProxyCommand},
	{"UserKnownHostsFile", "the user's known_hosts files, or none", kUserKnownHostsFile},
	{"GlobalKnownHostsFile", "the system's known_hosts files, or none", kGlobalKnownHostsFile},
	{"StrictHostKeyChecking", "what to do with an unknown host key", kStrictHostKeyChecking},
	{"HostKeyAlias", "the name host keys are looked up and recorded under", kHostKeyAlias},
	{"ServerAliveInterval", "seconds between keepalives", kServerAliveInterval},
	{"ServerAliveCountMax", "keepalives without an answer before the connection is dropped", kServerAliveCountMax},
	{"ConnectTimeout", "seconds allowed to connect", kConnectTimeout},
	{"AddressFamily", "any, inet (IPv4) or inet6 (IPv6)", kAddressFamily},
	{"BatchMode", "never prompt (for passphrases or passwords)", kBatchMode},
	{"PreferredAuthentications", "the order of authentication methods (publickey, keyboard-interactive, password)", kPreferredAuthentications},
	{"NumberOfPasswordPrompts", "tries of password and keyboard-interactive (0 turns them off)", kNumberOfPasswordPrompts},
	{"ExitOnForwardFailure", "exit when a forward cannot be set up", kExitOnForwardFailure},
	{"GatewayPorts", "let other hosts connect to local forwards", kGatewayPorts},
	{"ControlPath", "the control socket of a connection to share", kControlPath},
	{"ControlMaster", "whether to share connections through ControlPath", kControlMaster},
	{"CanonicalizeHostname", "canonicalize host names with CanonicalDomains (and re-read the config)", kCanonicalizeHostname},
	{"CanonicalDomains", "domain suffixes tried by CanonicalizeHostname", kCanonicalDomains},
	{"CanonicalizeMaxDots", "names with more dots are not canonicalized", kCanonicalizeMaxDots},
	{"CanonicalizeFallbackLocal", "whether a name no suffix resolves is an error", kCanonicalizeFallbackLocal},
	{"Host", "starts a block for hosts matching patterns", kHost},
	{"Match", "starts a block for connections matching criteria (all, canonical, final, exec, host, originalhost, user, localuser, localnetwork, tagged)", kMatch},
	{"Tag", "a name for Match tagged", kTag},
	{"Include", "reads other config files (globs)", kInclude},
	{"IgnoreUnknown", "unknown keywords matching these patterns are no error", kIgnoreUnknown},
}

// ignoredKeywords are the other keywords OpenSSH's ssh knows (9.x, with
// the GSSAPI ones of Debian and Fedora, Debian's keepalive ones and
// Apple's UseKeychain): accepted and not used.
var ignoredKeywords = strings.Fields(`
protocol cipher fallbacktorsh globalknownhostsfile2 rhostsauthentication userknownhostsfile2
useroaming usersh useprivilegedport afstokenpassing kerberosauthentication kerberostgtpassing
rsaauthentication rhostsrsaauthentication compressionlevel gssapiauthentication
gssapidelegatecredentials gssapikeyexchange gssapitrustdns gssapirenewalforcesrekey
gssapikexalgorithms gssapiclientidentity gssapiserveridentity pkcs11provider smartcarddevice
forwardagent forwardx11 forwardx11trusted forwardx11timeout xauthlocation
passwordauthentication kbdinteractiveauthentication kbdinteractivedevices
challengeresponseauthentication skeyauthentication tisauthentication pubkeyauthentication
dsaauthentication hostbasedauthentication identityfile2 addkeystoagent ciphers macs
remoteforward localforward permitremoteopen escapechar connectionattempts checkhostip
compression tcpkeepalive keepalive syslogfacility loglevel logverbose
dynamicforward hostkeyalgorithms casignaturealgorithms bindaddress
bindinterface clearallforwardings enablesshkeysign verifyhostkeydns
nohostauthenticationforlocalhost rekeylimit sendenv setenv controlpersist hashknownhosts
tunnel tunneldevice localcommand permitlocalcommand remotecommand visualhostkey
kexalgorithms ipqos requesttty sessiontype stdinnull forkafterauthentication proxyusefdpass
canonicalizepermittedcnames streamlocalbindmask streamlocalbindunlink revokedhostkeys
fingerprinthash updatehostkeys hostbasedacceptedalgorithms hostbasedkeytypes
pubkeyacceptedalgorithms pubkeyacceptedkeytypes securitykeyprovider knownhostscommand
requiredrsasize enableescapecommandline channeltimeout obscurekeystroketiming
refuseconnection versionaddendum warnweakcrypto protocolkeepalives setuptimeout usekeychain
`)

// keywords maps every lowercased keyword ssh knows to how it is read.
var keywords = func() map[string]kind {
	m := map[string]kind{}
	for _, k := range ignoredKeywords {
		m[k] = kIgnored
	}
	for _, k := range Keys {
		m[strings.ToLower(k.Name)] = k.kind
	}
	return m
}()

// Known reports whether ssh(1) knows keyword (in any case).
func Known(keyword string) bool {
	_, ok := keywords[LowerASCII(keyword)]
	return ok
}

// Used reports whether sshdial uses keyword's value (in any case).
func Used(keyword string) bool {
	k, ok := keywords[LowerASCII(keyword)]
	return ok && k != kIgnored
}
