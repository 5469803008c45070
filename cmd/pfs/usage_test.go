package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
		{[]string{"get", "a", "b", "c"}, "get: too many operands"},
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

func TestParseCmdFlags(t *testing.T) {
	f, rest, err := parseCmdFlags("rl", []string{"a", "-r", "-", "b", "-lr", "--", "-c"})
	if err != nil {
		t.Fatal(err)
	}
	if !f['r'] || !f['l'] || len(f) != 2 {
		t.Errorf("flags %v", f)
	}
	if strings.Join(rest, ",") != "a,-,b,-c" {
		t.Errorf("operands %q", rest)
	}
}
