package main

import (
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func gogc(t *testing.T) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestDefaultGC is not parallel: it sets the process's GC percent.
func TestDefaultGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	unset := func(string) (string, bool) { return "", false }
	defaultGC(unset)
	if got := gogc(t); got != gcPercent {
		t.Errorf("GOGC unset: runs with %d, want %d", got, gcPercent)
	}
	debug.SetGCPercent(100)
	set := func(k string) (string, bool) { return "100", k == "GOGC" }
	defaultGC(set)
	if got := gogc(t); got != 100 {
		t.Errorf("GOGC=100 in the environment: runs with %d", got)
	}
}
