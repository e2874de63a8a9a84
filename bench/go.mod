module github.com/sshdial/sshdial/bench

go 1.26.0

replace github.com/sshdial/sshdial => ../

require (
	github.com/sshdial/sshdial v0.0.0
	golang.org/x/crypto v0.59.0
	golang.org/x/image v0.47.0
	golang.org/x/net v0.62.0
)

require (
	github.com/kevinburke/ssh_config v1.6.0 // indirect
	github.com/skeema/knownhosts v1.3.3 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
