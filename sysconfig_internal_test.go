package sshdial

// The tests never read the machine's /etc/ssh/ssh_config: those that want a
// system file name one (WithSystemConfigFile, or systemConfigPath).
func init() { systemConfigPath = "" }
