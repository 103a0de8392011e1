package subscriptions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// newWebhookCredentials makes the Basic credentials of a company's webhook:
// a random user and a 32-byte random password.
func newWebhookCredentials() (user, password string) {
	p := make([]byte, 32)
	_, _ = rand.Read(p)
	return "pdgw-" + randomHex(6), base64.RawURLEncoding.EncodeToString(p)
}

// upsert stores a company found through /users/me with new credentials. An
// existing company keeps its webhook credentials and webhook id; only its
// API credentials and domain change.
func (m *Manager) upsert(ctx context.Context, me pipedrive.User, auth string, set func(*Secrets)) (*Company, bool, error) {
	c, err := m.store.Modify(ctx, me.CompanyID, func(c *Company) error {
		c.Auth = auth
		if me.CompanyDomain != "" {
			c.Domain = me.CompanyDomain
		}
		c.Secrets.APIToken, c.Secrets.AccessToken, c.Secrets.RefreshToken = "", "", ""
		c.Secrets.AccessExpiresAt = time.Time{}
		set(&c.Secrets)
		return nil
	})
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, ErrUnknownCompany) {
		return nil, false, err
	}
	user, pass := newWebhookCredentials()
	c = &Company{
		ID: me.CompanyID, Domain: me.CompanyDomain, Auth: auth, WebhookUser: user,
		ConnectedAt: m.opts.Clock.Now().UTC(), Status: Status{State: StatePending},
		Secrets: Secrets{WebhookPassword: pass},
	}
	set(&c.Secrets)
	if err := m.store.Create(ctx, c); err != nil {
		if errors.Is(err, ErrConflict) { // connected concurrently: update that one
			return m.upsert(ctx, me, auth, set)
		}
		return nil, false, err
	}
	m.log.Info("company connected", "company_id", c.ID, "domain", c.Domain, "auth", auth)
	return c, true, nil
}

// ErrRejected wraps Pipedrive refusing the credentials of a connect.
var ErrRejected = errors.New("pipedrive rejected the credentials")

// ConnectToken connects (or reconnects) the company of an API token, then
// asks the leader to reconcile it and returns its state.
func (m *Manager) ConnectToken(ctx context.Context, token string) (*Company, error) {
	me, err := m.api.Me(ctx, "", pipedrive.Credentials{APIToken: token})
	if err != nil {
		if errors.Is(err, pipedrive.ErrUnauthorized) || errors.Is(err, pipedrive.ErrForbidden) {
			return nil, fmt.Errorf("%w: %v", ErrRejected, err)
		}
		return nil, fmt.Errorf("failed to identify the company: %w", err)
	}
	c, _, err := m.upsert(ctx, me, AuthAPIToken, func(s *Secrets) { s.APIToken = token })
	if err != nil {
		return nil, err
	}
	return m.reconcileAndGet(ctx, c.ID)
}

// reconcileAndGet asks the leader for a run and returns the company as it
// is afterwards. Without a leader the company stays pending: the leader
// picks it up when there is one.
func (m *Manager) reconcileAndGet(ctx context.Context, id int64) (*Company, error) {
	if _, err := m.send(ctx, "reconcile", id); err != nil {
		m.log.Warn("reconcile not confirmed", "company_id", id, "error", err)
	}
	return m.store.Get(ctx, id)
}

// connectConfigured connects the PIPEDRIVE_API_TOKENS companies: declarative,
// at every start of a leader. A token that is unchanged costs one /users/me.
func (m *Manager) connectConfigured(ctx context.Context) {
	for i, tok := range m.opts.APITokens {
		me, err := m.api.Me(ctx, "", pipedrive.Credentials{APIToken: tok})
		if err != nil {
			m.log.Error("cannot connect a PIPEDRIVE_API_TOKENS entry", "entry", i+1, "error", err)
			continue
		}
		if c, err := m.store.Get(ctx, me.CompanyID); err == nil && c.Auth == AuthAPIToken && c.Secrets.APIToken == tok {
			continue
		}
		if _, _, err := m.upsert(ctx, me, AuthAPIToken, func(s *Secrets) { s.APIToken = tok }); err != nil {
			m.log.Error("cannot store a PIPEDRIVE_API_TOKENS company", "entry", i+1, "company_id", me.CompanyID, "error", err)
		}
	}
}

// Reconcile runs the company now (on the leader) and returns it.
func (m *Manager) Reconcile(ctx context.Context, id int64) (*Company, error) {
	if _, err := m.store.Get(ctx, id); err != nil {
		return nil, err
	}
	rep, err := m.send(ctx, "reconcile", id)
	if err != nil {
		return nil, err
	}
	if rep.Gone {
		return nil, ErrUnknownCompany
	}
	return m.store.Get(ctx, id)
}

// Disconnect deletes the company's webhook at Pipedrive (on the leader),
// then forgets the company; its credentials stop working at once.
func (m *Manager) Disconnect(ctx context.Context, id int64) error {
	if _, err := m.store.Get(ctx, id); err != nil {
		return err
	}
	rep, err := m.send(ctx, "disconnect", id)
	if err != nil {
		return err
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	m.cache.Forget(fmt.Sprint(id))
	return nil
}

// disconnect is the leader's job for Disconnect.
func (m *Manager) disconnect(ctx context.Context, id int64) result {
	ctx = withCompany(ctx, id)
	c, err := m.store.Get(ctx, id)
	if errors.Is(err, ErrUnknownCompany) {
		return result{gone: true}
	}
	if err != nil {
		return result{err: err}
	}
	want := desired{URL: WebhookURL(m.opts.PublicURL, id), Name: m.opts.WebhookName, User: c.WebhookUser, KnownID: c.WebhookID}
	hooks, err := m.api.ListWebhooks(ctx, c.Domain, c.Credentials())
	if err != nil {
		res := classify(fmt.Errorf("failed to list webhooks: %w", err))
		if !res.permanent {
			return res
		}
		// Credentials revoked: we cannot delete the webhook, but the user
		// asked to disconnect. Our 401s make Pipedrive drop it in 3 days.
		m.log.Warn("disconnecting without deleting the webhook", "company_id", id, "error", err)
		hooks = nil
	}
	for _, w := range hooks {
		if !isOurs(want, w) {
			continue
		}
		if err := m.api.DeleteWebhook(ctx, c.Domain, c.Credentials(), w.ID); err != nil && !errors.Is(err, pipedrive.ErrNotFound) {
			return classify(fmt.Errorf("failed to delete webhook %d: %w", w.ID, err))
		}
		m.log.Info("webhook deleted", "company_id", id, "webhook_id", w.ID, "reason", "disconnect")
	}
	if err := m.store.Delete(ctx, id); err != nil {
		return result{err: err}
	}
	m.cache.Forget(c.Key())
	m.log.Info("company disconnected", "company_id", id)
	return result{gone: true}
}
