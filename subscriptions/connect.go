package subscriptions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// ErrRejected wraps Pipedrive refusing the credentials of a connect: an
// API token, or an OAuth authorisation code.
var ErrRejected = errors.New("pipedrive rejected the credentials")

// ConnectToken connects (or reconnects) the company of an API token, then
// asks the leader to reconcile it and returns its state.
func (m *Manager) ConnectToken(ctx context.Context, token string) (View, error) {
	me, err := m.api.Me(ctx, "", pipedrive.Credentials{APIToken: token})
	if err != nil {
		if errors.Is(err, pipedrive.ErrUnauthorized) || errors.Is(err, pipedrive.ErrForbidden) {
			return View{}, fmt.Errorf("%w: %v", ErrRejected, err)
		}
		return View{}, fmt.Errorf("failed to identify the company: %w", err)
	}
	c, err := m.upsert(ctx, me, store.AuthAPIToken, func(s *store.Secrets) { s.APIToken = token })
	if err != nil {
		return View{}, err
	}
	return m.reconcileAndGet(ctx, c.ID)
}

// reconcileAndGet asks the leader for a run and returns the company as it
// is afterwards. Without a leader the company stays pending: the leader
// picks it up when there is one.
func (m *Manager) reconcileAndGet(ctx context.Context, id int64) (View, error) {
	if _, err := m.send(ctx, opReconcile, id); err != nil {
		m.log.Warn("reconcile not confirmed", "company_id", id, "error", err)
	}
	// The wait may have used up ctx; the answer is still owed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return m.get(ctx, id)
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
		if c, err := m.store.Get(ctx, me.CompanyID); err == nil && c.Auth == store.AuthAPIToken && c.Secrets.APIToken == tok {
			continue
		}
		if _, err := m.upsert(ctx, me, store.AuthAPIToken, func(s *store.Secrets) { s.APIToken = tok }); err != nil {
			m.log.Error("cannot store a PIPEDRIVE_API_TOKENS company", "entry", i+1, "company_id", me.CompanyID, "error", err)
		}
	}
}

// upsert stores a company found through /users/me with new credentials. An
// existing company keeps its webhook credentials and webhook id; only its
// API credentials and domain change, and only if every guard allows it.
// An unreadable record is never overwritten: its error is returned.
func (m *Manager) upsert(ctx context.Context, me pipedrive.User, auth string, set func(*store.Secrets), guards ...func(*store.Company) error) (*store.Company, error) {
	c, err := m.store.Modify(ctx, me.CompanyID, func(c *store.Company) error {
		for _, g := range guards {
			if err := g(c); err != nil {
				return err
			}
		}
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
		return c, nil
	}
	if !errors.Is(err, store.ErrUnknownCompany) {
		return nil, err
	}
	user, pass := newWebhookCredentials()
	c = &store.Company{
		ID: me.CompanyID, Domain: me.CompanyDomain, Auth: auth, WebhookUser: user,
		ConnectedAt: m.opts.Clock.Now().UTC(), Status: store.Status{State: store.StatePending},
		Secrets: store.Secrets{WebhookPassword: pass},
	}
	set(&c.Secrets)
	if err := m.store.Create(ctx, c); err != nil {
		if errors.Is(err, store.ErrConflict) { // connected concurrently: update that one
			return m.upsert(ctx, me, auth, set, guards...)
		}
		return nil, err
	}
	m.log.Info("company connected", "company_id", c.ID, "domain", c.Domain, "auth", auth)
	return c, nil
}

// newWebhookCredentials makes the Basic credentials of a company's webhook:
// a random user and a 32-byte random password.
func newWebhookCredentials() (user, password string) {
	p := make([]byte, 32)
	_, _ = rand.Read(p)
	return "pdgw-" + randomHex(6), base64.RawURLEncoding.EncodeToString(p)
}
