package cli

import (
	"strings"
	"testing"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

func TestAccessLogFlags(t *testing.T) {
	for _, tc := range []struct {
		mode, format string
		want         *xdsapi.AccessLog
		err          string
	}{
		{"off", "json", nil, ""},
		{"all", "text", &xdsapi.AccessLog{Mode: xdsapi.AccessLog_ALL, Format: xdsapi.AccessLog_TEXT, Path: "stdout"}, ""},
		{"sampled:1.5", "json", &xdsapi.AccessLog{Mode: xdsapi.AccessLog_SAMPLED, SamplePercent: 1.5, Path: "stdout"}, ""},
		{"sampled:101", "json", nil, "--access-log"},
		{"sampled", "json", nil, "--access-log"},
		{"some", "json", nil, "--access-log"},
		{"all", "yaml", nil, "--access-log-format"},
	} {
		f := accessLogFlags{accessLog: tc.mode, accessLogFormat: tc.format, accessLogPath: "stdout"}
		got, err := f.accessLogConfig()
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s/%s: err %v, want one naming %s", tc.mode, tc.format, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s/%s: %v", tc.mode, tc.format, err)
		case (got == nil) != (tc.want == nil) || (got != nil && (got.Mode != tc.want.Mode || got.Format != tc.want.Format || got.SamplePercent != tc.want.SamplePercent || got.Path != tc.want.Path)):
			t.Errorf("%s/%s: %v, want %v", tc.mode, tc.format, got, tc.want)
		}
	}
}
