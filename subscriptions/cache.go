package subscriptions

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// Cache holds every company's webhook credentials in memory, kept current
// by a watch on the store, so that the ingress never does a KV round trip
// per request. It implements gateway.Credentials.
type Cache struct {
	store *Store
	log   *slog.Logger
	mu    sync.RWMutex
	creds map[string][2]string
	// synced is set once the watch has delivered every existing record:
	// before that a managed company would get 401s.
	synced atomic.Bool
}

// NewCache returns an empty cache; Run fills it.
func NewCache(store *Store, log *slog.Logger) *Cache {
	return &Cache{store: store, log: log, creds: map[string][2]string{}}
}

// WebhookCredentials returns the Basic credentials of a managed company.
func (c *Cache) WebhookCredentials(companyID string) (string, string, bool) {
	c.mu.RLock()
	v, ok := c.creds[companyID]
	c.mu.RUnlock()
	return v[0], v[1], ok
}

// Synced reports whether the initial load is complete.
func (c *Cache) Synced() bool { return c.synced.Load() }

// Forget drops a company at once on this replica (the watch does the same
// on every replica a moment later).
func (c *Cache) Forget(companyID string) {
	c.mu.Lock()
	delete(c.creds, companyID)
	c.mu.Unlock()
}

// Run follows the store until ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	w, err := c.store.kv.WatchAll(ctx)
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
				c.synced.Store(true)
				continue
			}
			c.apply(e)
		}
	}
}

func (c *Cache) apply(e jetstream.KeyValueEntry) {
	id, ok := strings.CutPrefix(e.Key(), "company.")
	if !ok {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		c.Forget(id)
		return
	}
	co, err := c.store.decode(e.Value(), e.Revision())
	if err != nil {
		c.log.Error("cannot load company credentials", "company_id", id, "error", err)
		c.Forget(id)
		return
	}
	c.mu.Lock()
	c.creds[id] = [2]string{co.WebhookUser, co.Secrets.WebhookPassword}
	c.mu.Unlock()
}
