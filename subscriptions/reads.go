package subscriptions

import (
	"context"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// WebhookFinding is what one reconcile found about a company's webhook, for
// whoever looks for lost events (the backfill's gap detector).
type WebhookFinding struct {
	// Present: our correct webhook was listed.
	Present bool
	// Created is set when this reconcile created our webhook (its
	// add_time, or the time of the call).
	Created time.Time
	// LastHTTPStatus and LastDeliveryTime are Pipedrive's view of our
	// webhook's last delivery.
	LastHTTPStatus   *int
	LastDeliveryTime *time.Time
	// Seen is when an earlier reconcile last found our webhook in place
	// (zero: never, as far as the record tells): a webhook missing or
	// created again now lost the events since then.
	Seen time.Time
}

// finding describes the outcome of a reconcile that listed the webhooks:
// keep is our correct webhook found in place, created the one made now.
func (r *reconciler) finding(ctx context.Context, c *store.Company, keep, created *pipedrive.Webhook) {
	if r.onWebhook == nil {
		return
	}
	var f WebhookFinding
	switch st := c.Status; {
	case st.WebhookSeen != nil:
		f.Seen = *st.WebhookSeen
	case st.State == store.StateOK && st.LastReconcile != nil:
		// A record written before webhook_seen was kept: a reconcile that
		// succeeded left our webhook in place.
		f.Seen = *st.LastReconcile
	}
	if created != nil {
		f.Created = created.AddTime
		if f.Created.IsZero() {
			f.Created = r.now()
		}
	} else if keep != nil {
		f.Present, f.LastHTTPStatus, f.LastDeliveryTime = true, keep.LastHTTPStatus, keep.LastDeliveryTime
	}
	r.onWebhook(ctx, c.ID, f)
}

// ConnectedAt tells when a company was connected: its record was created
// then (a reconnect keeps it; a disconnect deletes the record).
func (m *Manager) ConnectedAt(ctx context.Context, id int64) (time.Time, error) {
	c, err := m.store.Get(ctx, id)
	if err != nil {
		return time.Time{}, err
	}
	return c.ConnectedAt, nil
}

// APICredentials returns a company's domain and API credentials, for reads
// of its data. An OAuth access token that expires soon is refreshed first
// by a reconcile on the leader, so that refresh tokens are only ever used
// in one place.
func (m *Manager) APICredentials(ctx context.Context, id int64) (string, pipedrive.Credentials, error) {
	c, err := m.store.Get(ctx, id)
	if err != nil {
		return "", pipedrive.Credentials{}, err
	}
	if c.Auth == store.AuthOAuth && !m.opts.Clock.Now().Add(refreshMargin).Before(c.Secrets.AccessExpiresAt) {
		if _, err := m.Reconcile(ctx, id); err != nil {
			return "", pipedrive.Credentials{}, err
		}
		if c, err = m.store.Get(ctx, id); err != nil {
			return "", pipedrive.Credentials{}, err
		}
	}
	return c.Domain, c.Credentials(), nil
}
