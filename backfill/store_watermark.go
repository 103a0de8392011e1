package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The watermarks in the Store: the gateway-wide healthy key and the
// per-company entries (see watermark.go for how flushes move them).

// health is the gateway-wide watermark. Every company is served by the same
// ingress and published to the same JetStream, so each company's
// healthy_through is the gateway's: one key stands for all of them, written
// by whichever replica is healthy.
type health struct {
	// HealthyThrough: a replica was serving and JetStream acking then.
	HealthyThrough time.Time `json:"healthy_through"`
	// Recovered is when a stale HealthyThrough was last found (an outage
	// ended), DownSince that stale value.
	Recovered time.Time `json:"recovered,omitzero"`
	DownSince time.Time `json:"down_since,omitzero"`

	revision uint64 // 0: not stored yet
}

// watermark is what a company's own deliveries showed after an outage. It
// is written only when that changes, not as time passes. (When our webhook
// was last seen in place is kept with the company's record.)
type watermark struct {
	// FirstDelivery is the first successful first-attempt delivery after
	// the outage that ended at Recovered (the gateway-wide Recovered then):
	// it proves that no ban was in force any more.
	Recovered     time.Time `json:"recovered,omitzero"`
	FirstDelivery time.Time `json:"first_delivery,omitzero"`
	// OldHealthyThrough and OldDownSince are the company's own watermark
	// of the per-company format: kept as read until the gateway-wide key
	// exists, which is derived from them (legacyHealth).
	OldHealthyThrough time.Time `json:"healthy_through,omitzero"`
	OldDownSince      time.Time `json:"down_since,omitzero"`

	revision uint64
}

// dropOld forgets the per-company format's watermark, once the gateway-wide
// key took over.
func (w *watermark) dropOld() { w.OldHealthyThrough, w.OldDownSince = time.Time{}, time.Time{} }

func (s *Store) watermark(ctx context.Context, company int64) (*watermark, error) {
	e, err := s.kv.Get(ctx, wmKey(company))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &watermark{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the watermark of company %d: %w", company, err)
	}
	var w watermark
	if err := json.Unmarshal(e.Value(), &w); err != nil {
		return nil, fmt.Errorf("corrupt watermark of company %d: %w", company, err)
	}
	w.revision = e.Revision()
	return &w, nil
}

func (s *Store) putWatermark(ctx context.Context, company int64, w *watermark) error {
	return s.write(ctx, wmKey(company), w, &w.revision, fmt.Sprintf("the watermark of company %d", company))
}

// modifyWatermark reads, changes and writes a watermark, retrying when
// another replica wrote it meanwhile. f returns false to write nothing.
func (s *Store) modifyWatermark(ctx context.Context, company int64, f func(*watermark) (bool, error)) error {
	for attempt := 0; ; attempt++ {
		w, err := s.watermark(ctx, company)
		if err != nil {
			return err
		}
		write, err := f(w)
		if err != nil || !write {
			return err
		}
		err = s.putWatermark(ctx, company, w)
		if !errors.Is(err, errConflict) || attempt == 10 {
			return err
		}
	}
}

// health reads the gateway-wide watermark. Before it was first written it
// is derived from the per-company entries, if any (see legacyHealth);
// revision 0 tells that it is not stored yet.
func (s *Store) health(ctx context.Context) (*health, error) {
	e, err := s.kv.Get(ctx, healthKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return s.legacyHealth(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the gateway's watermark: %w", err)
	}
	var h health
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		return nil, fmt.Errorf("corrupt gateway watermark: %w", err)
	}
	h.revision = e.Revision()
	return &h, nil
}

// legacyHealth derives the gateway-wide watermark from the entries of the
// per-company format, where every replica advanced each company's own
// healthy_through: the newest one is when a replica last served, and the
// newest outage found is the last outage. So an outage spanning the upgrade
// is still found, and none is invented. No entries: a fresh install.
func (s *Store) legacyHealth(ctx context.Context) (*health, error) {
	entries, err := s.scan(ctx, "wm.*")
	if err != nil {
		return nil, fmt.Errorf("failed to read the per-company watermarks: %w", err)
	}
	var h health
	for _, e := range entries {
		var w watermark
		if json.Unmarshal(e.Value(), &w) != nil {
			continue // tells nothing about when the gateway served
		}
		h.HealthyThrough = maxTime(h.HealthyThrough, w.OldHealthyThrough)
		if w.Recovered.After(h.Recovered) && !w.OldDownSince.IsZero() {
			h.Recovered, h.DownSince = w.Recovered, w.OldDownSince
		}
	}
	return &h, nil
}

// putHealth writes the gateway-wide watermark if nobody changed it since it
// was read (creates it when its revision is 0).
func (s *Store) putHealth(ctx context.Context, h *health) error {
	return s.write(ctx, healthKey, h, &h.revision, "the gateway's watermark")
}
