package testutil

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

// RelayCommand, as the first argument of a test binary whose TestMain calls
// RelayMain, makes the binary a ProxyCommand: "RelayCommand host port
// [words...]" connects to host:port and copies its standard input and
// output to and from it. It first appends its arguments as a line to the
// file named by $SSHDIAL_TEST_RELAY_LOG, if set, so that a test can see
// that it ran and with what.
const RelayCommand = "sshdial-test-relay"

// RelayMain runs the relay and exits if args (os.Args) ask for it, and
// returns otherwise.
func RelayMain(args []string) {
	if len(args) < 4 || args[1] != RelayCommand {
		return
	}
	os.Exit(relay(args[2], args[3], args[4:]))
}

func relay(host, port string, words []string) int {
	if log := os.Getenv("SSHDIAL_TEST_RELAY_LOG"); log != "" {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return 1
		}
		fmt.Fprintln(f, strings.Join(append([]string{host, port}, words...), " "))
		f.Close()
	}
	c, err := net.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(os.Stdout, c)
	return 0
}
