// Package store keeps the connected companies in a NATS KV bucket, one key
// per company, each record sealed and authenticated as a whole with a key
// derived from STATE_KEY (see record.go), and lets readers follow it. It must not know webhooks, Pipedrive or the leader: it reads
// and writes records.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/keys"
)

// ErrUnknownCompany is returned for a company that is not connected.
var ErrUnknownCompany = errors.New("unknown company")

// ErrConflict means the record changed since it was read.
var ErrConflict = errors.New("company record changed concurrently")

// Store keeps companies in a NATS KV bucket, one key per company, each
// record sealed under the ring's current key.
type Store struct {
	kv     jetstream.KeyValue
	keys   *keys.Ring
	hasher tokenHasher
	// opened counts the records opened (read and unsealed), the cost a
	// caller can avoid by using what the watch delivered.
	opened atomic.Int64
}

// Opened is the number of records opened so far.
func (s *Store) Opened() int64 { return s.opened.Load() }

// Open creates or opens the bucket.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, ring *keys.Ring) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "pipedrive-gateway connected companies",
		// One revision: every reconcile rewrites the record (its status),
		// and older revisions would only fill the blocks NATS loads whole
		// (and leave authentic old records to roll back to).
		History:  1,
		Replicas: replicas,
		Storage:  jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open company store %s: %w", bucket, err)
	}
	return &Store{kv: kv, keys: ring, hasher: newTokenHasher(ring.Current.Master)}, nil
}

// OldKey reports a record read under a previous key (or in the first
// format): the next write seals it again under the current one.
func (s *Store) OldKey(c *Company) bool { return c.keyID != s.keys.Current.ID }

// keyPrefix starts every company's key: "company.<id>".
const keyPrefix = "company."

func companyKey(id int64) string { return keyPrefix + strconv.FormatInt(id, 10) }

// companyID is the id in a key, false for a key that is not a company's.
func companyID(key string) (int64, bool) {
	s, ok := strings.CutPrefix(key, keyPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// Get reads one company.
func (s *Store) Get(ctx context.Context, id int64) (*Company, error) {
	e, err := s.kv.Get(ctx, companyKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrUnknownCompany
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read company %d: %w", id, err)
	}
	return s.decode(id, e.Value(), e.Revision())
}

// List returns every readable company and every unreadable record, each
// ordered by id. One unreadable record affects only its own company: the
// others are listed all the same.
func (s *Store) List(ctx context.Context) ([]*Company, []*UnreadableError, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to list companies: %w", err)
	}
	defer lister.Stop()
	var out []*Company
	var bad []*UnreadableError
	for k := range lister.Keys() {
		id, ok := companyID(k)
		if !ok {
			continue
		}
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read %s: %w", k, err)
		}
		c, err := s.decode(id, e.Value(), e.Revision())
		var ue *UnreadableError
		if errors.As(err, &ue) {
			bad = append(bad, ue)
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Company) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(bad, func(a, b *UnreadableError) int { return cmp.Compare(a.ID, b.ID) })
	return out, bad, nil
}

// IDs returns the id of every company, ordered: with Get, a scan that
// holds one record at a time instead of all of them (List).
func (s *Store) IDs(ctx context.Context) ([]int64, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to list companies: %w", err)
	}
	defer lister.Stop()
	var out []int64
	for k := range lister.Keys() {
		if id, ok := companyID(k); ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Create stores a new company; ErrConflict if it exists.
func (s *Store) Create(ctx context.Context, c *Company) error {
	b, err := s.encode(c)
	if err != nil {
		return err
	}
	rev, err := s.kv.Create(ctx, companyKey(c.ID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("failed to store company %d: %w", c.ID, err)
	}
	c.revision = rev
	return nil
}

// Update writes c if nobody changed it since it was read: ErrConflict
// otherwise, and ErrUnknownCompany if it was deleted (a disconnect wins over
// a reconcile that was running at the time).
func (s *Store) Update(ctx context.Context, c *Company) error {
	b, err := s.encode(c)
	if err != nil {
		return err
	}
	rev, err := s.kv.Update(ctx, companyKey(c.ID), b, c.revision)
	if err != nil {
		if _, gerr := s.kv.Get(ctx, companyKey(c.ID)); errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return ErrUnknownCompany
		}
		if errors.Is(err, jetstream.ErrKeyExists) { // wrong last revision
			return ErrConflict
		}
		return fmt.Errorf("failed to update company %d: %w", c.ID, err)
	}
	c.revision = rev
	return nil
}

// Modify reads the company, applies f and writes it back, retrying on
// concurrent changes.
func (s *Store) Modify(ctx context.Context, id int64, f func(*Company) error) (*Company, error) {
	for attempt := 0; ; attempt++ {
		c, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := f(c); err != nil {
			return nil, err
		}
		err = s.Update(ctx, c)
		if !errors.Is(err, ErrConflict) || attempt == 5 {
			return c, err
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
}

// Delete forgets a company.
func (s *Store) Delete(ctx context.Context, id int64) error {
	if err := s.kv.Purge(ctx, companyKey(id)); err != nil {
		return fmt.Errorf("failed to delete company %d: %w", id, err)
	}
	return nil
}

// Change is one record as Watch sees it.
type Change struct {
	ID int64
	// Company is the record now; nil when the company was deleted or its
	// record cannot be read (Err).
	Company *Company
	Err     error
}

// Watch calls changed with every record as it is and then as it changes,
// and synced once the records that existed at the start have been given,
// until ctx ends.
func (s *Store) Watch(ctx context.Context, changed func(Change), synced func()) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("failed to watch the company store: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil { // end of the initial values
				synced()
				continue
			}
			id, ok := companyID(e.Key())
			if !ok {
				continue
			}
			ch := Change{ID: id}
			if e.Operation() == jetstream.KeyValuePut {
				ch.Company, ch.Err = s.decode(id, e.Value(), e.Revision())
			}
			changed(ch)
		}
	}
}
