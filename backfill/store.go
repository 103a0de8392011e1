package backfill

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// errConflict means a record changed since it was read.
var errConflict = errors.New("gap record changed concurrently")

// Store keeps gaps, their checkpoints and the delivery watermarks in one
// NATS KV bucket:
//
//	gap.<company>.<gap id>  a record: the GAP, its run's checkpoint
//	healthy                 the gateway's healthy_through and its last outage
//	wm.<company>            a company's own evidence: its first delivery after an outage
type Store struct {
	kv jetstream.KeyValue
}

// record is the stored form of a gap.
type record struct {
	Gap
	// Recovery: see Evidence.Recovery.
	Recovery time.Time `json:"recovery,omitzero"`
	// Seq counts state changes; it names the status events.
	Seq int `json:"seq"`
	// Manual gaps are run as asked, even over windows already recovered.
	Manual bool `json:"manual,omitempty"`
	// Run is the checkpoint of the run, once it started.
	Run *checkpoint `json:"run,omitempty"`
	// Absorbed are the open gaps this one absorbed.
	Absorbed []absorbedGap `json:"absorbed,omitempty"`

	revision uint64
}

// absorbedGap is an open gap that another absorbed, as it was announced.
type absorbedGap struct {
	ID     string    `json:"id"`
	From   time.Time `json:"from"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
	Seq    int       `json:"seq"`
}

// absorbedEnd is how an absorbed gap ends: with r's state and error, over
// its own window, merged into r.
func (r *record) absorbedEnd(a absorbedGap) *record {
	g := r.Gap
	g.ID, g.From, g.Until, g.Reason = a.ID, a.From, a.Until, a.Reason
	g.Events, g.TokensSpent = 0, 0
	g.Uncovered = intersect(r.Uncovered, Range{From: a.From, Until: a.Until})
	g.MergedInto = r.ID
	return &record{Gap: g, Seq: a.Seq + 1}
}

// OpenStore creates or opens the bucket.
func OpenStore(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "pipedrive-gateway gaps, backfill checkpoints and delivery watermarks",
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open gap store %s: %w", bucket, err)
	}
	return &Store{kv: kv}, nil
}

func companyToken(id int64) string { return strconv.FormatInt(id, 10) }

func gapKey(company int64, id string) string { return "gap." + companyToken(company) + "." + id }

func wmKey(company int64) string { return "wm." + companyToken(company) }

// healthKey is the gateway-wide watermark's key.
const healthKey = "healthy"

// newGapID is sortable by creation time and unique enough: a time, the
// company and random bits. It is also the run id in Pipedrive-Backfill.
func newGapID(company int64, now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "g" + now.UTC().Format("20060102T150405") + "-" + companyToken(company) + "-" + hex.EncodeToString(b)
}

// scanTimeout bounds a scan: a watcher made while the connection was
// coming back can miss its end-of-values marker, and the caller retries
// sooner than it would wait.
const scanTimeout = 5 * time.Second

// scan returns the values of every key matching pattern.
func (s *Store) scan(ctx context.Context, pattern string) ([]jetstream.KeyValueEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	w, err := s.kv.Watch(ctx, pattern, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watcher closed")
			}
			if e == nil { // all current values delivered
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func decodeRecord(e jetstream.KeyValueEntry) (*record, error) {
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("corrupt gap record %s: %w", e.Key(), err)
	}
	r.revision = e.Revision()
	return &r, nil
}

// gaps returns a company's gaps, oldest first.
func (s *Store) gaps(ctx context.Context, company int64) ([]*record, error) {
	entries, err := s.scan(ctx, "gap."+companyToken(company)+".*")
	if err != nil {
		return nil, fmt.Errorf("failed to list gaps of company %d: %w", company, err)
	}
	out := make([]*record, 0, len(entries))
	for _, e := range entries {
		r, err := decodeRecord(e)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	// Ties by id: replicas merging the same gaps pick the same survivor.
	slices.SortFunc(out, func(a, b *record) int { return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID)) })
	return out, nil
}

// Gaps returns a company's gaps, newest first (the admin API's order).
func (s *Store) Gaps(ctx context.Context, company int64) ([]Gap, error) {
	rs, err := s.gaps(ctx, company)
	if err != nil {
		return nil, err
	}
	out := make([]Gap, 0, len(rs))
	for i := len(rs) - 1; i >= 0; i-- {
		out = append(out, rs[i].Gap)
	}
	return out, nil
}

func (s *Store) get(ctx context.Context, company int64, id string) (*record, error) {
	e, err := s.kv.Get(ctx, gapKey(company, id))
	if err != nil {
		return nil, err
	}
	return decodeRecord(e)
}

// put writes r if nobody changed it since it was read (create when its
// revision is 0).
func (s *Store) put(ctx context.Context, r *record) error {
	return s.write(ctx, gapKey(r.CompanyID, r.ID), r, &r.revision, "gap "+r.ID)
}

// write stores v as JSON under key if the key is still at *revision
// (creates it when that is 0), and sets *revision to the new one;
// errConflict if it changed meanwhile. what names it in errors.
func (s *Store) write(ctx context.Context, key string, v any, revision *uint64, what string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var rev uint64
	if *revision == 0 {
		rev, err = s.kv.Create(ctx, key, b)
	} else {
		rev, err = s.kv.Update(ctx, key, b, *revision)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return errConflict
	case err != nil:
		return fmt.Errorf("failed to store %s: %w", what, err)
	}
	*revision = rev
	return nil
}

func (s *Store) remove(ctx context.Context, r *record) error {
	err := s.kv.Delete(ctx, gapKey(r.CompanyID, r.ID), jetstream.LastRevision(r.revision))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errConflict
	}
	return err
}

// admit records evidence: it merges into the company's open gaps or opens
// new ones (see admit). It returns the gaps created, so that their status
// events can be sent.
//
// Two replicas admitting overlapping evidence at once (both finding the
// same stale watermark) can each create a gap, under keys of their own.
// So after creating, admit looks again: an open gap overlapping one it
// created was made meanwhile, and admitting the evidence once more merges
// the two (the older absorbs the newer, the same on every replica).
func (s *Store) admit(ctx context.Context, ev Evidence, now time.Time) ([]*record, error) {
	if ev.Window.Empty() {
		return nil, nil
	}
	var created []*record
	for attempt := 0; ; attempt++ {
		existing, err := s.gaps(ctx, ev.CompanyID)
		switch {
		case err != nil && len(created) > 0:
			return created, nil // recorded; merging a duplicate is best effort
		case err != nil:
			return nil, err
		case len(created) > 0 && (!raced(existing, created) || attempt > 10):
			return surviving(existing, created), nil
		}
		ch := admit(existing, ev, func() string { return newGapID(ev.CompanyID, now) }, now)
		err = s.apply(ctx, ch)
		switch {
		case err == nil:
			if created = append(created, ch.create...); len(created) == 0 {
				return nil, nil
			}
			// Look again for gaps created meanwhile.
		case len(created) > 0 && (!errors.Is(err, errConflict) || attempt >= 10):
			return created, nil
		case !errors.Is(err, errConflict) || attempt >= 10:
			return nil, err
		}
		// Another replica changed the company's gaps meanwhile: start over
		// from what is stored now.
	}
}

// raced reports whether an open gap overlaps or touches one of created
// without being it: admit would have merged the two, had it seen both.
func raced(existing, created []*record) bool {
	for _, c := range surviving(existing, created) {
		for _, o := range existing {
			if o.ID != c.ID && o.State == StateOpen && o.Window().overlapsOrTouches(c.Window()) {
				return true
			}
		}
	}
	return false
}

// surviving returns, as stored now, the gaps of created not absorbed.
func surviving(existing, created []*record) []*record {
	var out []*record
	for _, r := range existing {
		if slices.ContainsFunc(created, func(c *record) bool { return c.ID == r.ID }) {
			out = append(out, r)
		}
	}
	return out
}

func (s *Store) apply(ctx context.Context, ch changes) error {
	for _, r := range ch.update {
		if err := s.put(ctx, r); err != nil {
			return err
		}
	}
	for _, r := range ch.create {
		if err := s.put(ctx, r); err != nil {
			return err
		}
	}
	for _, r := range ch.remove {
		if err := s.remove(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
