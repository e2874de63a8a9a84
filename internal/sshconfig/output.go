package sshconfig

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// PrintedKeys are the keys Config.WriteTo prints, in the order `ssh -G`
// prints them.
var PrintedKeys = []string{
	"host", "user", "hostname", "port", "addressfamily", "batchmode",
	"canonicalizehostname", "controlmaster", "exitonforwardfailure",
	"gatewayports", "identitiesonly", "stricthostkeychecking",
	"numberofpasswordprompts", "serveralivecountmax", "serveraliveinterval",
	"controlpath", "hostkeyalias", "identityagent", "preferredauthentications",
	"identityfile", "certificatefile", "globalknownhostsfile",
	"userknownhostsfile", "connecttimeout", "proxycommand", "proxyjump",
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Get returns key's values (key lowercase) as `ssh -G` prints them: one
// element per line ssh prints (several for identityfile and
// certificatefile), nil for a key ssh does not print here.
func (c *Config) Get(key string) []string {
	one := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	oneline := func(v []string) []string {
		if len(v) == 0 {
			return []string{"none"}
		}
		return []string{strings.Join(v, " ")}
	}
	switch strings.ToLower(key) {
	case "host":
		return one(c.Host)
	case "user":
		return one(c.User)
	case "hostname":
		return one(c.HostName)
	case "port":
		return one(strconv.Itoa(c.Port))
	case "addressfamily":
		return one(c.AddressFamily)
	case "batchmode":
		return one(yesNo(c.BatchMode))
	case "canonicalizehostname":
		return one(c.CanonicalizeHostname)
	case "controlmaster":
		return one(c.ControlMaster)
	case "exitonforwardfailure":
		return one(yesNo(c.ExitOnForwardFailure))
	case "gatewayports":
		return one(yesNo(c.GatewayPorts))
	case "identitiesonly":
		return one(yesNo(c.IdentitiesOnly))
	case "stricthostkeychecking":
		return one(c.StrictHostKeyChecking)
	case "serveralivecountmax":
		return one(strconv.Itoa(c.ServerAliveCountMax))
	case "serveraliveinterval":
		return one(strconv.Itoa(c.ServerAliveInterval))
	case "controlpath":
		return one(c.ControlPath)
	case "hostkeyalias":
		return one(c.HostKeyAlias)
	case "identityagent":
		return one(c.IdentityAgent)
	case "identityfile":
		return append([]string(nil), c.IdentityFiles...)
	case "certificatefile":
		return append([]string(nil), c.CertificateFiles...)
	case "globalknownhostsfile":
		return oneline(c.GlobalKnownHostsFiles)
	case "userknownhostsfile":
		return oneline(c.UserKnownHostsFiles)
	case "connecttimeout":
		if c.ConnectTimeout < 0 {
			return []string{"none"}
		}
		return one(strconv.Itoa(c.ConnectTimeout))
	case "proxycommand":
		if c.ProxyJump != "" {
			return nil
		}
		return one(c.ProxyCommand)
	case "proxyjump":
		return one(c.ProxyJump)
	case "numberofpasswordprompts":
		return one(strconv.Itoa(c.NumberOfPasswordPrompts))
	case "preferredauthentications":
		return one(c.PreferredAuthentications)
	}
	return nil
}

// WriteTo writes the configuration as `ssh -G` does, for the keys in
// PrintedKeys: "key value" lines, keys lowercase, one line per value.
func (c *Config) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, k := range PrintedKeys {
		for _, v := range c.Get(k) {
			fmt.Fprintf(&b, "%s %s\n", k, v)
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
