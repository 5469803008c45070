package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/internal/version"
)

// TestUsageErrors checks the command-line errors (exit 2 with the usage),
// which are detected before connecting to anything.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "missing command"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"stat"}, "stat: missing operand"},
		{[]string{"cat"}, "cat: missing operand"},
		{[]string{"put", "a"}, "put: missing operand"},
		{[]string{"mv", "a", "b", "c"}, "mv: too many operands"},
		{[]string{"get", "a"}, "get: missing operand"},
		{[]string{"cp", "a"}, "cp: missing operand"},
		{[]string{"chmod", "zz", "f"}, `chmod: invalid mode "zz"`},
		{[]string{"chmod", "u+x,", "f"}, `chmod: invalid mode "u+x,"`},
		{[]string{"chmod", "644"}, "chmod: missing operand"},
		{[]string{"chown", ":", "f"}, `chown: invalid owner ":"`},
		{[]string{"chown", "no-such-user-pfs", "f"}, `chown: unknown user "no-such-user-pfs"`},
		{[]string{"chown", "1:no-such-group-pfs", "f"}, `chown: unknown group "no-such-group-pfs"`},
		{[]string{"touch", "-d", "yesterday", "f"}, `touch: invalid time "yesterday" (use 2006-01-02 15:04:05, RFC 3339 or @SECONDS)`},
		{[]string{"truncate", "f"}, "truncate: -s SIZE is required"},
		{[]string{"truncate", "f", "-s"}, "truncate: flag -s needs a value"},
		{[]string{"truncate", "-s", "10Q", "f"}, `truncate: invalid size "10Q"`},
		{[]string{"truncate", "-s", "99999999999999999999", "f"}, `truncate: invalid size "99999999999999999999"`},
		{[]string{"xattr", "bogus", "f"}, `xattr: unknown subcommand "bogus" (list, get, set, rm)`},
		{[]string{"xattr", "get", "f"}, "xattr: missing operand"},
		{[]string{"xattr", "list", "f", "x"}, "xattr: too many operands"},
		{[]string{"du", "-x"}, "du: unknown flag -x"},
		{[]string{"df", "x"}, "df: too many operands"},
		{[]string{"volumes", "x"}, "volumes: too many operands"},
		{[]string{"status", "x"}, "status: too many operands"},
		{[]string{"-timeout", "x", "ls"}, `invalid value "x" for flag -timeout: not a duration such as 30s or 2m`},
		{[]string{"mv", "a"}, "mv: missing operand"},
		{[]string{"ln", "-s", "a"}, "ln: missing operand"},
		{[]string{"mkdir"}, "mkdir: missing operand"},
		{[]string{"rm", "-f", "a"}, "rm: unknown flag -f"},
		{[]string{"ls", "-la"}, "ls: unknown flag -a"},
		{[]string{"statvfs", "x"}, "statvfs: too many operands"},
		{[]string{"-bogus", "ls"}, "flag provided but not defined: -bogus"},
		{[]string{"-uid", "x", "ls"}, `invalid value "x" for flag -uid: not a 32-bit unsigned number`},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"-server", "127.0.0.1:1"}, tc.args...)
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
		want := "pfs: " + tc.msg + "\n" + usageText
		if code != 2 || errb.String() != want || out.Len() != 0 {
			t.Errorf("pfs %v: exit %d, stdout %q, stderr %q; want exit 2 and %q",
				tc.args, code, out.String(), errb.String(), want)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"-help"}} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, nil, &out, &errb)
		if code != 0 || out.String() != usageText || errb.Len() != 0 {
			t.Errorf("pfs %v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-version"}, nil, &out, &errb)
	if code != 0 || out.String() != "pfs "+version.Version+"\n" || errb.Len() != 0 {
		t.Errorf("-version: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestParseCmdFlags(t *testing.T) {
	f, rest, err := parseCmdFlags("rl", "sd", []string{"a", "-r", "-", "b", "-lr", "-s", "-5M", "-d@10", "--", "-c"})
	if err != nil {
		t.Fatal(err)
	}
	if !f.on('r') || !f.on('l') || f.on('x') || len(f.set) != 4 {
		t.Errorf("flags %v", f.set)
	}
	if v, ok := f.val('s'); !ok || v != "-5M" {
		t.Errorf("-s %q %v", v, ok)
	}
	if v, ok := f.val('d'); !ok || v != "@10" {
		t.Errorf("-d %q %v", v, ok)
	}
	if strings.Join(rest, ",") != "a,-,b,-c" {
		t.Errorf("operands %q", rest)
	}
	if _, _, err := parseCmdFlags("", "s", []string{"a", "-s"}); err == nil || err.Error() != "flag -s needs a value" {
		t.Errorf("-s without a value: %v", err)
	}
}
