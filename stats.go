package sshdial

import "sync/atomic"

// Stats is a snapshot of what a Dialer has done, for status pages and
// metrics. Counts are totals since the Dialer was made.
type Stats struct {
	SSHConnections int    // SSH connections up now (own ones; a ControlMaster's is not counted)
	ControlPath    string // the control path of the ControlMaster dials go through; "" when none answers, or once a Conn or dial found it gone
	OpenConns      int    // Conns open now
	Dials          uint64 // dials that passed the checks of their arguments
	DialFailures   uint64 // dials that returned an error
	Reconnects     uint64 // SSH connections made after the first (owned ones only)
	BytesSent      uint64 // bytes committed by Writes
	BytesReceived  uint64 // bytes returned by Reads
}

// stats are the Dialer's counters.
type stats struct {
	dials, dialFailures, connects, reconnects atomic.Uint64
	sent, received                            atomic.Uint64
}

func (s *stats) addSent(n int) {
	if s != nil {
		s.sent.Add(uint64(n))
	}
}

func (s *stats) addReceived(n int) {
	if s != nil {
		s.received.Add(uint64(n))
	}
}
