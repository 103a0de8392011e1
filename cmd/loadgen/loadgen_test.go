package main

import (
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/gateway"
)

func TestTemplates(t *testing.T) {
	t.Parallel()
	tpls, mix, err := buildTemplates("9912345", "0a1b2c3d")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(tpls), len(actionWeights)*len(entities); got != want {
		t.Fatalf("got %d templates, want %d", got, want)
	}
	seen := make(map[int]bool)
	for _, i := range mix {
		seen[i] = true
	}
	if len(seen) != len(tpls) {
		t.Errorf("mix uses %d of %d templates", len(seen), len(tpls))
	}
	var buf []byte
	for i := range tpls {
		tp := &tpls[i]
		buf = tp.render(buf, 0xabc123456789)
		if n := len(buf); n < 1000 || n > 3072 {
			t.Errorf("%s.%s: body is %d bytes, want 1–3 KB", tp.action, tp.entity, n)
		}
		ev, err := gateway.Parse(buf, "9912345")
		if err != nil {
			t.Fatalf("%s.%s: gateway rejects the body: %v", tp.action, tp.entity, err)
		}
		if want := "0a1b2c3d-0000-4000-8000-abc123456789"; ev.ID != want {
			t.Errorf("%s.%s: id %q, want %q", tp.action, tp.entity, ev.ID, want)
		}
		if ev.Action != tp.action || ev.Object != tp.entity {
			t.Errorf("got %s.%s, want %s.%s", ev.Action, ev.Object, tp.action, tp.entity)
		}
		seq, ok := parseHex12(ev.ID[idPrefixLen:])
		if !ok || seq != 0xabc123456789 {
			t.Errorf("parseHex12(%q) = %x, %v", ev.ID[idPrefixLen:], seq, ok)
		}
	}
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i)*100*time.Microsecond, 0) // 0.1 ms … 100 ms
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.quantile(c.q)
		if got < c.want || got > c.want+c.want/200 {
			t.Errorf("quantile(%v) = %v, want %v (+0.5%%)", c.q, got, c.want)
		}
	}
	for us := uint64(0); us < 1<<30; us = us*3/2 + 1 {
		i := histIndex(us)
		if v := histValue(i); v < us || (i > 0 && histValue(i-1) >= us) {
			t.Fatalf("bucket %d for %dµs has bounds (%d, %d]", i, us, histValue(i-1), v)
		}
	}
}
