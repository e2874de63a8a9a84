package sshdial

import "testing"

// controlFromConfig, the hook for ssh_config's ControlPath, gives way to
// WithControlPath and WithControl, "none" included; with ControlMaster
// yes or ask it shares nothing, as ssh then looks for no master.
func TestControlFromConfig(t *testing.T) {
	for _, master := range []string{"no", "auto", "autoask"} {
		d := newDialer[Option](nil)
		d.controlFromConfig("/tmp/cm", master)
		if d.control == nil || d.control.path != "/tmp/cm" || d.control.policy != ControlFallback {
			t.Fatalf("ControlMaster %s: config's ControlPath not used: %+v", master, d.control)
		}
	}
	for _, master := range []string{"yes", "ask"} {
		d := newDialer[Option](nil)
		d.controlFromConfig("/tmp/cm", master)
		if d.control != nil && d.control.path != "" {
			t.Fatalf("ControlMaster %s: a master is looked for: %+v", master, d.control)
		}
	}
	d := newDialer([]Option{WithControlPath("none")})
	d.controlFromConfig("/tmp/cm", "auto")
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
	d = newDialer[Option](nil)
	d.controlFromConfig("", "auto")
	if d.control != nil {
		t.Fatalf("no ControlPath: %+v", d.control)
	}
}
