package subscriptions

import (
	"context"
	"errors"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// ErrUnknownCompany is returned for a company that is not connected.
var ErrUnknownCompany = store.ErrUnknownCompany

// View is a company as the admin API shows it (SPEC §6 COMPANY): never a
// token or password. Auth is "api_token" or "oauth"; State is "ok",
// "pending" (not reconciled yet) or "error".
type View struct {
	CompanyID        int64      `json:"company_id"`
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

// get reads one company as a View.
func (m *Manager) get(ctx context.Context, id int64) (View, error) {
	c, err := m.store.Get(ctx, id)
	if err != nil {
		return View{}, err
	}
	return viewOf(c), nil
}

// Companies lists every connected company, ordered by id.
func (m *Manager) Companies(ctx context.Context) ([]View, error) {
	companies, err := m.store.List(ctx)
	if err != nil {
		return nil, err
	}
	views := make([]View, 0, len(companies))
	for _, c := range companies {
		views = append(views, viewOf(c))
	}
	return views, nil
}

// Reconcile runs the company now (on the leader) and returns it.
// ErrUnknownCompany if it is not connected, ErrNoLeader if nobody leads.
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
// then forgets the company; its credentials stop working at once.
func (m *Manager) Disconnect(ctx context.Context, id int64) error {
	if _, err := m.store.Get(ctx, id); err != nil {
		return err
	}
	rep, err := m.send(ctx, opDisconnect, id)
	if err != nil {
		return err
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	m.cache.forget(id)
	return nil
}

// disconnect is the leader's job for Disconnect.
func (m *Manager) disconnect(ctx context.Context, id int64) result {
	res := m.rec.disconnect(ctx, id)
	if res.gone {
		m.cache.forget(id)
	}
	return res
}
