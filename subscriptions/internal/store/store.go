// Package store keeps the connected companies in a NATS KV bucket, one key
// per company, with their secrets sealed by STATE_KEY, and lets readers
// follow it. It must not know webhooks, Pipedrive or the leader: it reads
// and writes records.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnknownCompany is returned for a company that is not connected.
var ErrUnknownCompany = errors.New("unknown company")

// ErrConflict means the record changed since it was read.
var ErrConflict = errors.New("company record changed concurrently")

// Store keeps companies in a NATS KV bucket, one key per company, with the
// secrets sealed by STATE_KEY.
type Store struct {
	kv   jetstream.KeyValue
	seal *sealer
}

// record is the stored form of a Company.
type record struct {
	Company
	Sealed string `json:"sealed"`
}

// Open creates or opens the bucket.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, key []byte) (*Store, error) {
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "pipedrive-gateway connected companies",
		History:     5,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open company store %s: %w", bucket, err)
	}
	return &Store{kv: kv, seal: s}, nil
}

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

func (s *Store) encode(c *Company) ([]byte, error) {
	plain, err := json.Marshal(c.Secrets)
	if err != nil {
		return nil, err
	}
	return json.Marshal(record{Company: *c, Sealed: s.seal.seal(plain, c.Key())})
}

func (s *Store) decode(b []byte, rev uint64) (*Company, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("corrupt company record: %w", err)
	}
	c := r.Company
	plain, err := s.seal.open(r.Sealed, c.Key())
	if err != nil {
		return nil, fmt.Errorf("company %d: %w", c.ID, err)
	}
	if err := json.Unmarshal(plain, &c.Secrets); err != nil {
		return nil, fmt.Errorf("company %d: corrupt secrets: %w", c.ID, err)
	}
	c.revision = rev
	return &c, nil
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
	return s.decode(e.Value(), e.Revision())
}

// List returns every company, ordered by id.
func (s *Store) List(ctx context.Context) ([]*Company, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to list companies: %w", err)
	}
	defer lister.Stop()
	var out []*Company
	for k := range lister.Keys() {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", k, err)
		}
		c, err := s.decode(e.Value(), e.Revision())
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Company) int { return int(a.ID - b.ID) })
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
				ch.Company, ch.Err = s.decode(e.Value(), e.Revision())
			}
			changed(ch)
		}
	}
}
