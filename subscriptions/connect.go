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

// connectEntry connects PIPEDRIVE_API_TOKENS entry i (the leader's job for
// its key): GET /users/me names the company, the company is stored and its
// first reconcile runs at once. A failure returns to the scheduler, which
// tries again after Pipedrive's Retry-After (429) or a back-off (5xx,
// timeouts), or at the next resync when Pipedrive refuses the token; the
// entry is listed as pending meanwhile. An entry that a record connects
// already (by its keyed token hash) costs no call at all.
func (m *Manager) connectEntry(ctx context.Context, i int) result {
	if m.tokens.companyOf(i) != 0 {
		return result{gone: true}
	}
	me, err := m.api.Me(ctx, "", pipedrive.Credentials{APIToken: m.tokens.value(i)})
	if err != nil {
		res := classify(fmt.Errorf("failed to identify the company of PIPEDRIVE_API_TOKENS entry %d: %w", i+1, err))
		if m.tokens.failed(i, res, statusOf(err), m.opts.Clock.Now()) {
			m.log.Warn("cannot connect a PIPEDRIVE_API_TOKENS entry yet; retrying", "entry", i+1, "error", res.err, "permanent", res.permanent)
		}
		return res
	}
	if j, ok := m.tokens.ownerOf(me.CompanyID); ok && j != i {
		// Two users' tokens for one company: one webhook, with the first.
		m.log.Warn("PIPEDRIVE_API_TOKENS entries name the same company; keeping the first", "entry", i+1, "other_entry", j+1, "company_id", me.CompanyID)
		m.tokens.connected(i, me.CompanyID)
		return result{gone: true}
	}
	c, err := m.upsert(ctx, me, store.AuthAPIToken, func(s *store.Secrets) { s.APIToken = m.tokens.value(i) })
	if errors.Is(err, store.ErrUnreadable) {
		// The company is connected, but its record cannot be read (a wrong
		// STATE_KEY, or changed outside the gateway): it is listed as an
		// unreadable company, and never written over from here.
		m.log.Warn("the company of a PIPEDRIVE_API_TOKENS entry has an unreadable record; not connecting it again", "entry", i+1, "company_id", me.CompanyID)
		m.tokens.connected(i, me.CompanyID)
		return result{gone: true}
	}
	if err != nil {
		res := result{err: fmt.Errorf("failed to store the company of PIPEDRIVE_API_TOKENS entry %d: %w", i+1, err)}
		m.tokens.failed(i, res, 0, m.opts.Clock.Now())
		return res
	}
	m.tokens.connected(i, c.ID)
	m.sched.Kick(c.ID)
	return result{gone: true}
}

// statusOf is the HTTP status of a failed call, 0 when none came back.
func statusOf(err error) int {
	var apiErr *pipedrive.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
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
