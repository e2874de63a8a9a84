package main

import (
	"go/parser"
	"go/token"
	"regexp"
	"strings"
	"testing"
)

// TestManualNamesEveryFlag: doc.go, the command's manual, and the help
// describe every flag of the usage line.
func TestManualNamesEveryFlag(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil {
		t.Fatal("doc.go has no package comment")
	}
	manual := f.Doc.Text()
	var flags []string
	for _, m := range regexp.MustCompile(`\[-([A-Za-z]+)\]`).FindAllStringSubmatch(usageLine, -1) {
		for _, c := range m[1] {
			flags = append(flags, "-"+string(c))
		}
	}
	for _, m := range regexp.MustCompile(`\[(--?[A-Za-z][a-z-]*)[ \]]`).FindAllStringSubmatch(usageLine, -1) {
		flags = append(flags, m[1])
	}
	if len(flags) < 20 {
		t.Fatalf("found only %d flags in the usage line: %q", len(flags), flags)
	}
	flagRE := func(flag string) *regexp.Regexp {
		return regexp.MustCompile(`(^|[\s,(])` + regexp.QuoteMeta(flag) + `($|[\s,=])`)
	}
	for _, flag := range flags {
		if !flagRE(flag).MatchString(manual) {
			t.Errorf("doc.go does not describe %s", flag)
		}
		if !flagRE(flag).MatchString(helpText) && !strings.Contains(helpText, flag+",") {
			t.Errorf("the help does not describe %s", flag)
		}
	}
}
