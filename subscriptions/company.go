package subscriptions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// ErrUnknownCompany is returned for a company that is not connected.
var ErrUnknownCompany = store.ErrUnknownCompany

// View is a company as the admin API shows it (SPEC §6 COMPANY): never a
// token or password. Auth is "api_token" or "oauth"; State is "ok",
// "pending" (not reconciled yet) or "error".
//
// A PIPEDRIVE_API_TOKENS entry that is not connected yet is a View too,
// with CompanyID 0 and TokenEntry its position in the list (1-based);
// State is "pending" while it is retried, "error" when Pipedrive refused
// the token; LastReconcile is its last try.
type View struct {
	CompanyID        int64      `json:"company_id"`
	TokenEntry       int        `json:"token_entry,omitempty"`
	Domain           string     `json:"domain"`
	Auth             string     `json:"auth"`
	WebhookID        *int64     `json:"webhook_id"`
	State            string     `json:"state"`
	LastReconcile    *time.Time `json:"last_reconcile"`
	LastError        string     `json:"last_error"`
	LastHTTPStatus   *int       `json:"last_http_status"`
	LastDeliveryTime *time.Time `json:"last_delivery_time"`
}

func viewOf(c *store.Company) View {
	v := View{
		CompanyID: c.ID, Domain: c.Domain, Auth: c.Auth, State: c.Status.State,
		LastReconcile: c.Status.LastReconcile, LastError: c.Status.LastError,
		LastHTTPStatus: c.Status.LastHTTPStatus, LastDeliveryTime: c.Status.LastDeliveryTime,
	}
	if c.WebhookID != 0 {
		id := c.WebhookID
		v.WebhookID = &id
	}
	return v
}

// unreadableView is a company whose record cannot be read: only its id is
// known, its state is "error" and last_error says why.
func unreadableView(e *store.UnreadableError) View {
	return View{CompanyID: e.ID, State: store.StateError, LastError: e.Error()}
}

// views lists readable and unreadable companies together, ordered by id.
func views(companies []*store.Company, bad []*store.UnreadableError) []View {
	out := make([]View, 0, len(companies)+len(bad))
	for _, c := range companies {
		out = append(out, viewOf(c))
	}
	for _, b := range bad {
		out = append(out, unreadableView(b))
	}
	slices.SortFunc(out, func(a, b View) int { return cmp.Compare(a.CompanyID, b.CompanyID) })
	return out
}

// get reads one company as a View; an unreadable record is a View in state
// "error".
func (m *Manager) get(ctx context.Context, id int64) (View, error) {
	c, err := m.store.Get(ctx, id)
	var ue *store.UnreadableError
	if errors.As(err, &ue) {
		return unreadableView(ue), nil
	}
	if err != nil {
		return View{}, err
	}
	return viewOf(c), nil
}

// Company returns one connected company; ErrUnknownCompany if it is not.
func (m *Manager) Company(ctx context.Context, id int64) (View, error) { return m.get(ctx, id) }

// Companies lists every connected company, ordered by id, those whose
// record is unreadable included (state "error"), then the
// PIPEDRIVE_API_TOKENS entries not connected yet, by position. A replica
// that does not lead lists those as pending without the reason: only the
// leader tries them.
func (m *Manager) Companies(ctx context.Context) ([]View, error) {
	companies, bad, err := m.store.List(ctx)
	if err != nil {
		return nil, err
	}
	return append(views(companies, bad), m.tokens.views()...), nil
}

// ErrUnreadable means the company's stored record cannot be read (changed
// outside the gateway, or sealed with a key the gateway does not have): it
// is not reconciled, and cannot be reconnected over, until that is fixed.
var ErrUnreadable = store.ErrUnreadable

// ErrNotDisconnected means our webhook could not be deleted at Pipedrive,
// so the company is kept; a forced disconnect forgets it anyway.
var ErrNotDisconnected = errors.New("the webhook could not be deleted at Pipedrive, so the company is kept (force=true forgets it anyway)")

// CompanyIDs lists the ids of the connected companies, ordered, from
// memory once the records are loaded (the store's keys before that), so a
// caller may ask often (the backfill's flush every 15 s) at any scale
// without NATS reading the bucket. A company connected a moment ago may
// be missing until the watch delivers its record.
func (m *Manager) CompanyIDs(ctx context.Context) ([]int64, error) {
	if m.cache.synced.Load() {
		return m.cache.ids(), nil
	}
	return m.store.IDs(ctx)
}

// Reconcile runs the company now (on the leader) and returns it.
// ErrUnknownCompany if it is not connected, ErrUnreadable if its record
// cannot be read, ErrNoLeader if nobody leads.
func (m *Manager) Reconcile(ctx context.Context, id int64) (View, error) {
	if _, err := m.store.Get(ctx, id); err != nil {
		return View{}, err
	}
	rep, err := m.send(ctx, opReconcile, id)
	if err != nil {
		return View{}, err
	}
	if rep.Gone {
		return View{}, ErrUnknownCompany
	}
	return m.get(ctx, id)
}

// Disconnect deletes the company's webhook at Pipedrive (on the leader),
// then forgets the company; its credentials stop working at once. When the
// webhook cannot be deleted it returns ErrNotDisconnected with the reason
// and keeps the company, unless force is set.
func (m *Manager) Disconnect(ctx context.Context, id int64, force bool) error {
	if _, err := m.store.Get(ctx, id); err != nil && !errors.Is(err, store.ErrUnreadable) {
		return err
	}
	rep, err := m.sendCommand(ctx, command{Op: opDisconnect, CompanyID: id, Force: force})
	if err != nil {
		return err
	}
	if rep.Error != "" {
		return fmt.Errorf("%w: %s", ErrNotDisconnected, rep.Error)
	}
	m.cache.forget(id)
	return nil
}

// disconnect is the leader's job for Disconnect.
func (m *Manager) disconnect(ctx context.Context, id int64, force bool) result {
	res := m.rec.disconnect(ctx, id, force)
	if res.gone {
		m.cache.forget(id)
	}
	return res
}
