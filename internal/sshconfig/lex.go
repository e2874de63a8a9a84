package sshconfig

import "strings"

// whitespace is OpenSSH's WHITESPACE: what separates a keyword from its
// arguments and what strdelim skips.
const whitespace = " \t\r\n"

// strdelim splits the next word off s as OpenSSH's strdelim does: words end
// at whitespace, a double quote or (with splitEquals) one '='; a word that
// starts with a double quote runs to the next one. ok is false where
// OpenSSH's returns NULL (an unmatched quote); more is false where it sets
// the rest to NULL (no delimiter left).
func strdelim(s string, splitEquals bool) (word, rest string, more, ok bool) {
	set := whitespace + `"`
	if splitEquals {
		set += "="
	}
	i := strings.IndexAny(s, set)
	if i < 0 {
		return s, "", false, true
	}
	if s[i] == '"' {
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			return "", "", false, false
		}
		word = s[:i] + s[i+1:i+1+j]
		return word, strings.TrimLeft(s[i+1+j+1:], whitespace), true, true
	}
	equals := splitEquals && s[i] == '='
	word = s[:i]
	rest = strings.TrimLeft(s[i+1:], whitespace)
	if splitEquals && !equals && strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], whitespace)
	}
	return word, rest, true, true
}

// splitLine splits a config line into its lowercased keyword and the rest,
// as OpenSSH's process_config_line does before it looks at the keyword.
// skip is true for a blank or comment line. rest is "" when the keyword has
// no argument (an error for every keyword).
func splitLine(line string) (keyword, rest string, skip, ok bool) {
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i] // C strings end at NUL
	}
	// Trailing whitespace and form feeds go, except the first character.
	for len(line) > 1 && strings.IndexByte(whitespace+"\f", line[len(line)-1]) >= 0 {
		line = line[:len(line)-1]
	}
	if line == "" {
		return "", "", true, true
	}
	kw, rest, more, ok := strdelim(line, true)
	if !ok {
		return "", "", true, true // NULL keyword: the line is ignored
	}
	if kw == "" && more {
		kw, rest, more, ok = strdelim(rest, true)
		if !ok {
			return "", "", true, true
		}
	}
	if kw == "" || kw[0] == '\n' || kw[0] == '#' {
		return "", "", true, true
	}
	kw = LowerASCII(kw) // tolower in the C locale: "İnclude" is no keyword
	if !more {
		rest = ""
	}
	rest = strings.TrimLeft(rest, whitespace)
	return kw, rest, false, true
}

// argvSplit splits s into arguments as OpenSSH's argv_split with
// terminate_on_comment: spaces and tabs separate; single or double quotes
// group; a backslash escapes a quote, a backslash, or (outside quotes) a
// space; a '#' at the start of an argument ends the line. ok is false for
// an unterminated quote.
func argvSplit(s string) (args []string, ok bool) {
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
				i++
				b.WriteByte(s[i])
				continue
			case quote == 0 && (c == ' ' || c == '\t'):
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote != 0 && c == quote:
				quote = 0
				continue
			default:
				b.WriteByte(c)
				continue
			}
			break
		}
		args = append(args, b.String())
		if i >= len(s) && quote != 0 {
			return nil, false
		}
	}
	return args, true
}
