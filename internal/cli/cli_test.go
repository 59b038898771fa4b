package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"testing"
)

func TestUsageExit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		code   int
		exit   bool
		stderr string
	}{
		{"parsed", nil, 0, false, ""},
		{"-h", flag.ErrHelp, 0, true, ""},
		{"-h wrapped", fmt.Errorf("parse: %w", flag.ErrHelp), 0, true, ""},
		{"bad flag", errors.New("-d 5: want 4 or 6"), 2, true, "cmd: -d 5: want 4 or 6\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			code, exit := UsageExit("cmd", tc.err, &b)
			if code != tc.code || exit != tc.exit || b.String() != tc.stderr {
				t.Errorf("UsageExit: %d, %v, stderr %q; want %d, %v, %q", code, exit, b.String(), tc.code, tc.exit, tc.stderr)
			}
		})
	}
}
