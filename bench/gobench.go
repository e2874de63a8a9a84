package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goBenchmarks runs the library's own testing.B benchmarks (the Conn's hot
// paths against x/crypto's conn, with allocation counts) and returns their
// result lines.
func goBenchmarks() ([]string, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	benchtime := "1s"
	if *flagQuick {
		benchtime = "100x"
	}
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1", "-benchtime", benchtime, ".")
	cmd.Dir = root
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -bench: %v\n%s%s", err, out.Bytes(), stderr.Bytes())
	}
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("go test -bench printed no results:\n%s", out.Bytes())
	}
	return lines, nil
}

// moduleRoot finds the library's module, the parent of bench/, from the
// working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		mod, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(mod, []byte("module github.com/sshdial/sshdial\n")) {
			return d, nil
		}
	}
	return "", errors.New("run from the repository or its bench/ directory: the library's go.mod was not found")
}
