package subscriptions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// credentialCache holds every company's webhook credentials in memory,
// kept current by a watch on the store, so that the ingress never does a
// KV round trip per request.
//
// It is sized for 100,000 companies: an int64 key and one string per
// company (user and password in one allocation; a lookup returns
// substrings of it and allocates nothing): 117 bytes a company where a
// map of decimal ids to string pairs took 154 (BenchmarkCredentialCache).
type credentialCache struct {
	store *store.Store
	log   *slog.Logger
	// onChange is told every change once the cache has applied it.
	onChange func(store.Change)

	mu    sync.RWMutex
	creds map[int64]webhookCred
	// bad holds the companies whose record cannot be read: they are managed,
	// but their credentials are unknown.
	bad map[int64]error
	// synced is set, and loaded closed, once the watch has delivered every
	// existing record: before that no company is known to be unmanaged.
	synced atomic.Bool
	loaded chan struct{}
}

// webhookCred is a company's webhook user and password, concatenated,
// with what the leader needs of the record to schedule the company and
// report its gauges at its start without reading the record again.
type webhookCred struct {
	both    string
	userLen uint32
	summary
}

// summary is the little of a record that scheduling and the company
// gauges need: it fits in the padding of webhookCred.
type summary struct {
	// reconciled: the company was reconciled at least once (its first
	// reconcile after a leader's start can wait; a pending one cannot).
	reconciled bool
	state      uint8 // index in states
	// httpStatus is Pipedrive's last delivery status of our webhook (0:
	// none reported).
	httpStatus int16
}

func summaryOf(c *store.Company) summary {
	s := summary{reconciled: c.Status.LastReconcile != nil, state: stateCode(c.Status.State)}
	if p := c.Status.LastHTTPStatus; p != nil && *p > 0 && *p < 1000 {
		s.httpStatus = int16(*p)
	}
	return s
}

// view is the part of the company's View that the gauges read.
func (s summary) view(id int64) View {
	v := View{CompanyID: id, State: states[s.state]}
	if s.httpStatus != 0 {
		st := int(s.httpStatus)
		v.LastHTTPStatus = &st
	}
	return v
}

func (v webhookCred) user() string     { return v.both[:v.userLen] }
func (v webhookCred) password() string { return v.both[v.userLen:] }

// loadWait is how long a delivery that arrives before the records are
// loaded waits for them (well within Pipedrive's 10 s).
const loadWait = 3 * time.Second

func newCredentialCache(s *store.Store, log *slog.Logger, onChange func(store.Change)) *credentialCache {
	return &credentialCache{
		store: s, log: log, onChange: onChange,
		creds: map[int64]webhookCred{}, bad: map[int64]error{}, loaded: make(chan struct{}),
	}
}

// lookup gives a managed company's credentials. A company whose record is
// unreadable, and every company while the records are not loaded yet, is
// reported as managed with an empty user: its deliveries cannot be
// checked, and must neither be refused as unauthorised nor let in with the
// static credentials.
func (c *credentialCache) lookup(companyID string) (string, string, bool) {
	if !c.synced.Load() {
		t := time.NewTimer(loadWait)
		select {
		case <-c.loaded:
		case <-t.C:
		}
		t.Stop()
		if !c.synced.Load() {
			return "", "", true
		}
	}
	id, ok := parseCompanyID(companyID)
	if !ok {
		return "", "", false
	}
	c.mu.RLock()
	v, ok := c.creds[id]
	if !ok && len(c.bad) > 0 {
		_, ok = c.bad[id]
	}
	c.mu.RUnlock()
	return v.user(), v.password(), ok
}

// parseCompanyID reads a canonical positive decimal id: no sign, no
// leading zero, no overflow, so that one company has one spelling.
func parseCompanyID(s string) (int64, bool) {
	if s == "" || len(s) > 19 || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	var id int64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return 0, false
		}
		if id > (1<<63-1-int64(d))/10 {
			return 0, false
		}
		id = id*10 + int64(d)
	}
	return id, true
}

// forget drops a company at once on this replica (the watch does the same
// on every replica a moment later).
func (c *credentialCache) forget(id int64) {
	c.mu.Lock()
	delete(c.creds, id)
	delete(c.bad, id)
	c.mu.Unlock()
}

// run follows the store until ctx ends.
func (c *credentialCache) run(ctx context.Context) error {
	return c.store.Watch(ctx, c.apply, func() {
		if !c.synced.Swap(true) {
			close(c.loaded)
		}
	})
}

func (c *credentialCache) apply(ch store.Change) {
	switch {
	case ch.Err != nil:
		c.log.Error("cannot load company credentials: its deliveries get 503 until the record is readable", "company_id", ch.ID, "error", ch.Err)
		c.mu.Lock()
		delete(c.creds, ch.ID)
		c.bad[ch.ID] = ch.Err
		c.mu.Unlock()
	case ch.Company == nil:
		c.forget(ch.ID)
	default:
		c.put(ch.Company.ID, ch.Company.WebhookUser, ch.Company.Secrets.WebhookPassword, summaryOf(ch.Company))
	}
	if c.onChange != nil {
		c.onChange(ch)
	}
}

// put stores the credentials and summary, keeping the credentials already
// held when they are the same: every reconcile rewrites the record, rarely
// the credentials.
func (c *credentialCache) put(id int64, user, password string, sum summary) {
	c.mu.RLock()
	v, ok := c.creds[id]
	_, wasBad := c.bad[id]
	c.mu.RUnlock()
	if ok && !wasBad && v.user() == user && v.password() == password {
		if v.summary == sum {
			return
		}
		v.summary = sum
	} else {
		v = webhookCred{both: user + password, userLen: uint32(len(user)), summary: sum}
	}
	c.mu.Lock()
	c.creds[id] = v
	delete(c.bad, id)
	c.mu.Unlock()
}

// cachedCompany is one managed company as the cache knows it.
type cachedCompany struct {
	id int64
	summary
	// bad: its record is unreadable (the reason).
	bad error
}

// companies returns every managed company, readable or not, ordered.
func (c *credentialCache) companies() []cachedCompany {
	c.mu.RLock()
	out := make([]cachedCompany, 0, len(c.creds)+len(c.bad))
	for id, v := range c.creds {
		out = append(out, cachedCompany{id: id, summary: v.summary})
	}
	for id, err := range c.bad {
		out = append(out, cachedCompany{id: id, bad: err})
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b cachedCompany) int { return cmp.Compare(a.id, b.id) })
	return out
}

// ids returns every managed company, readable or not, ordered.
func (c *credentialCache) ids() []int64 {
	known := c.companies()
	out := make([]int64, len(known))
	for i, k := range known {
		out[i] = k.id
	}
	return out
}

// badCount is the number of records that cannot be read.
func (c *credentialCache) badCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.bad)
}

// unreadable reports the records that cannot be read, for readiness: nil
// when there are none.
func (c *credentialCache) unreadable() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.bad) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(c.bad))
	for id := range c.bad {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	unknownKey := false
	for i, id := range ids {
		var ue *store.UnreadableError
		if errors.As(c.bad[id], &ue) && ue.UnknownKey {
			unknownKey = true
		}
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(ids)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.bad[id].Error())
	}
	hint := "a record changed outside the gateway: restore it, or disconnect the company with ?force=true and connect it again"
	if unknownKey {
		hint = "is STATE_KEY right, and does STATE_KEY_PREVIOUS hold the key the records were sealed with?"
	}
	return fmt.Errorf("%d company record(s) unreadable (%s): %s", len(ids), hint, b.String())
}
