package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// credentialCache holds every company's webhook credentials in memory,
// kept current by a watch on the store, so that the ingress never does a
// KV round trip per request.
type credentialCache struct {
	store *store.Store
	log   *slog.Logger
	mu    sync.RWMutex
	creds map[string][2]string
	// bad holds the companies whose record cannot be read: they are managed,
	// but their credentials are unknown.
	bad map[int64]error
	// synced is set, and loaded closed, once the watch has delivered every
	// existing record: before that no company is known to be unmanaged.
	synced atomic.Bool
	loaded chan struct{}
}

// loadWait is how long a delivery that arrives before the records are
// loaded waits for them (well within Pipedrive's 10 s).
const loadWait = 3 * time.Second

func newCredentialCache(s *store.Store, log *slog.Logger) *credentialCache {
	return &credentialCache{store: s, log: log, creds: map[string][2]string{}, bad: map[int64]error{}, loaded: make(chan struct{})}
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
	c.mu.RLock()
	v, ok := c.creds[companyID]
	if !ok && len(c.bad) > 0 {
		if id, err := strconv.ParseInt(companyID, 10, 64); err == nil {
			_, ok = c.bad[id]
		}
	}
	c.mu.RUnlock()
	return v[0], v[1], ok
}

// forget drops a company at once on this replica (the watch does the same
// on every replica a moment later).
func (c *credentialCache) forget(id int64) {
	c.mu.Lock()
	delete(c.creds, strconv.FormatInt(id, 10))
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
	if ch.Err != nil {
		c.log.Error("cannot load company credentials: its deliveries get 503 until the record is readable", "company_id", ch.ID, "error", ch.Err)
		c.mu.Lock()
		delete(c.creds, strconv.FormatInt(ch.ID, 10))
		c.bad[ch.ID] = ch.Err
		c.mu.Unlock()
		return
	}
	if ch.Company == nil {
		c.forget(ch.ID)
		return
	}
	c.mu.Lock()
	c.creds[ch.Company.Key()] = [2]string{ch.Company.WebhookUser, ch.Company.Secrets.WebhookPassword}
	delete(c.bad, ch.ID)
	c.mu.Unlock()
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
