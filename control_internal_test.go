package sshdial

import "testing"

// controlFromConfig, the hook for ssh_config's ControlPath, gives way to
// WithControlPath and WithControl, "none" included.
func TestControlFromConfig(t *testing.T) {
	d := newDialer[Option](nil)
	d.controlFromConfig("/tmp/cm", "auto")
	if d.control == nil || d.control.path != "/tmp/cm" || d.control.policy != ControlFallback {
		t.Fatalf("config's ControlPath not used: %+v", d.control)
	}
	d = newDialer([]Option{WithControlPath("none")})
	d.controlFromConfig("/tmp/cm", "yes")
	if d.control == nil || d.control.path != "" {
		t.Fatalf("WithControlPath(none) overridden by the config: %+v", d.control)
	}
	d = newDialer([]Option{WithControl("/tmp/mine", ControlRequired)})
	d.controlFromConfig("/tmp/cm", "no")
	if d.control.path != "/tmp/mine" || d.control.policy != ControlRequired {
		t.Fatalf("WithControl overridden by the config: %+v", d.control)
	}
	d = newDialer[Option](nil)
	d.controlFromConfig("none", "auto")
	if d.control != nil && d.control.path != "" {
		t.Fatalf("ControlPath none: %+v", d.control)
	}
}
