package subscriptions

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

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
	// synced is set once the watch has delivered every existing record:
	// before that a managed company would get 401s.
	synced atomic.Bool
}

func newCredentialCache(s *store.Store, log *slog.Logger) *credentialCache {
	return &credentialCache{store: s, log: log, creds: map[string][2]string{}}
}

func (c *credentialCache) lookup(companyID string) (string, string, bool) {
	c.mu.RLock()
	v, ok := c.creds[companyID]
	c.mu.RUnlock()
	return v[0], v[1], ok
}

// forget drops a company at once on this replica (the watch does the same
// on every replica a moment later).
func (c *credentialCache) forget(id int64) {
	c.mu.Lock()
	delete(c.creds, strconv.FormatInt(id, 10))
	c.mu.Unlock()
}

// run follows the store until ctx ends.
func (c *credentialCache) run(ctx context.Context) error {
	return c.store.Watch(ctx, c.apply, func() { c.synced.Store(true) })
}

func (c *credentialCache) apply(ch store.Change) {
	if ch.Err != nil {
		c.log.Error("cannot load company credentials", "company_id", ch.ID, "error", ch.Err)
	}
	if ch.Company == nil {
		c.forget(ch.ID)
		return
	}
	c.mu.Lock()
	c.creds[ch.Company.Key()] = [2]string{ch.Company.WebhookUser, ch.Company.Secrets.WebhookPassword}
	c.mu.Unlock()
}
