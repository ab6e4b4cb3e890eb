package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestGaugeValue(t *testing.T) {
	text := "# HELP go_memstats_heap_inuse_bytes x\ngo_memstats_heap_inuse_bytes_total 9\ngo_memstats_heap_inuse_bytes 1.5e+06\ngo_goroutines 12\n"
	if v, err := gaugeValue(text, "go_memstats_heap_inuse_bytes"); err != nil || v != 1.5e6 {
		t.Errorf("heap = %v, %v; want 1.5e6", v, err)
	}
	if _, err := gaugeValue(text, "go_memstats_stack_inuse_bytes"); err == nil {
		t.Error("a missing metric gave no error")
	}
}

func TestResidentBytesAndFDs(t *testing.T) {
	rss, err := residentBytes(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("own RSS = %d, %v; want at least 1 MiB", rss, err)
	}
	before, err := countFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if after, err := countFDs(os.Getpid()); err != nil || after != before+1 {
		t.Errorf("descriptors %d after opening one, %d before (%v)", after, before, err)
	}
}

func TestReportIdle(t *testing.T) {
	mib := uint64(1 << 20)
	results := []idleResult{
		{codec: "redis", mode: "epoll", conns: 1024,
			before: idleSample{rss: 50 * mib, heap: 10 * mib, stacks: mib},
			after:  idleSample{rss: 70 * mib, heap: 12 * mib, stacks: 5 * mib}},
		{codec: "dubbo", mode: "goroutine", conns: 1024,
			before: idleSample{rss: 50 * mib}, after: idleSample{rss: 60 * mib}},
	}
	var out strings.Builder
	reportIdle(&out, results)
	for _, want := range []string{
		`(?m)^idle connections: 1024 per proxy`,
		`(?m)^ +redis +epoll +50\.0 MiB +70\.0 MiB +20\.0 KiB +2\.0 KiB +4\.0 KiB +6\.0 KiB$`,
		`(?m)^  redis epoll: 20\.0 KiB RSS per idle connection \(target <= 16 KiB: MISSED\)$`,
		`(?m)^  dubbo goroutine: 10\.0 KiB RSS per idle connection \(target <= 16 KiB: met\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("report does not match %s:\n%s", want, out.String())
		}
	}
}
