package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateDuration(t *testing.T) {
	tests := []struct {
		in   Duration
		want string // substring of the error; empty: valid
	}{
		{"1s", ""}, {"500ms", ""}, {"1m30s", ""}, {"1.5h", ""}, {"250us", ""},
		{"0s", "positive"}, {"0", "duration such as"}, {"-1s", "duration such as"},
		{"1e3s", "duration such as"}, {"5 s", "duration such as"}, {"1d", "duration such as"},
		{"100000000000000000000h", "invalid duration"},
	}
	for _, tc := range tests {
		t.Run(string(tc.in), func(t *testing.T) {
			errs := validateDuration(tc.in, field.NewPath("spec", "timeout"))
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Errorf("want valid, got %v", errs)
			case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.want)):
				t.Errorf("want an error containing %q, got %v", tc.want, errs)
			}
		})
	}
}

func TestValidateStringMatch(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		name string
		in   StringMatch
		want string // field of the error; empty: valid
	}{
		{"presence", StringMatch{}, ""},
		{"empty exact", StringMatch{Exact: s("")}, ""},
		{"regex", StringMatch{Regex: s(`^say(Hello|Bye)$`)}, ""},
		{"two set", StringMatch{Exact: s("a"), Regex: s("a")}, "m"},
		{"backreference is not RE2", StringMatch{Regex: s(`(a)\1`)}, "m.regex"},
		{"too long", StringMatch{Prefix: s(strings.Repeat("x", maxMatchLen+1))}, "m.prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := validateStringMatch(tc.in, field.NewPath("m"))
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Errorf("want valid, got %v", errs)
			case tc.want != "" && (len(errs) != 1 || errs[0].Field != tc.want):
				t.Errorf("want one error at %s, got %v", tc.want, errs)
			}
		})
	}
}

func TestValidateFault(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	tests := []struct {
		in   Fault
		want string // substring of the error; empty: valid
	}{
		{Fault{Delay: &FaultDelay{FixedDelay: "1s"}}, ""},
		{Fault{Abort: &FaultAbort{Status: i32(80), Percentage: i32(10)}}, ""},
		{Fault{Abort: &FaultAbort{}}, ""},
		{Fault{}, "spec.routes[0].fault: Required value: set delay, abort or both"},
		{Fault{Delay: &FaultDelay{FixedDelay: "soon"}}, "spec.routes[0].fault.delay.fixedDelay"},
		{Fault{Delay: &FaultDelay{FixedDelay: "1s", Percentage: i32(101)}}, "spec.routes[0].fault.delay.percentage"},
		{Fault{Abort: &FaultAbort{Status: i32(0)}}, "spec.routes[0].fault.abort.status"},
	}
	for _, tc := range tests {
		errs := validateFault(&tc.in, field.NewPath("spec", "routes").Index(0).Child("fault"))
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%+v: want valid, got %v", tc.in, errs)
		case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.want)):
			t.Errorf("%+v: want an error containing %q, got %v", tc.in, tc.want, errs)
		}
	}
}
