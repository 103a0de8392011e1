package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/grants"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// Who may connect a company through OAuth (SPEC §5): with tickets (the
// default) an install starts only with a one-time link the administrator
// made; with OpenInstall anyone may start one. Either way the callback is
// accepted only with the state this gateway issued for the install, from
// the browser that started it, once, within StateLifetime; anything else
// is refused before Pipedrive is called. An install never replaces the
// API-token connection of a company unless its ticket was made for that
// company.

// Errors of the install flow, for the pages that explain them.
var (
	// ErrInstallForbidden: no ticket, or one that is unknown, used or
	// expired, while installs need one.
	ErrInstallForbidden = errors.New("this install link is not valid: it was already used, has expired or is incomplete")
	// ErrBadState: the callback's state is missing, forged, used, expired
	// or was issued to another browser.
	ErrBadState = errors.New("this install is not valid any more: it was already finished, has expired or was started in another browser")
	// ErrDenied: the Pipedrive user did not allow the app.
	ErrDenied = errors.New("access was not allowed in Pipedrive")
	// ErrAPITokenConnected: the company is connected with an API token,
	// which an install must not replace silently.
	ErrAPITokenConnected = errors.New("the company is already connected with an API token")
	// ErrWrongCompany: the ticket was made for another company.
	ErrWrongCompany = errors.New("the install link was made for another company")
)

// Lifetimes of install links and of installs in progress.
const (
	InstallTicketLifetime = grants.TicketLifetime
	InstallStateLifetime  = grants.StateLifetime
)

// InstallError is a refused install with the company it was for.
type InstallError struct {
	Err       error // one of the errors above
	CompanyID int64 // the company Pipedrive named, when known
	Want      int64 // for ErrWrongCompany: the ticket's company
}

func (e *InstallError) Error() string {
	if e.Want != 0 {
		return fmt.Sprintf("%v: made for company %d, authorised for company %d", e.Err, e.Want, e.CompanyID)
	}
	return fmt.Sprintf("company %d: %v", e.CompanyID, e.Err)
}

func (e *InstallError) Unwrap() error { return e.Err }

// NewInstallTicket makes a one-time install ticket, valid for 24 hours.
// With companyID set, the install may re-authorise that company even when
// it is connected with an API token.
func (m *Manager) NewInstallTicket(ctx context.Context, companyID int64) (ticket string, expiresAt time.Time, err error) {
	expiresAt = m.opts.Clock.Now().Add(grants.TicketLifetime).UTC().Truncate(time.Second)
	ticket, err = m.grants.NewTicket(ctx, grants.Ticket{CompanyID: companyID, ExpiresAt: expiresAt})
	if err != nil {
		return "", time.Time{}, err
	}
	m.log.Info("install ticket made", "company_id", companyID, "expires_at", expiresAt)
	return ticket, expiresAt, nil
}

// CheckInstall reports whether an install may start with ticket (nil), or
// ErrInstallForbidden, without using the ticket.
func (m *Manager) CheckInstall(ctx context.Context, ticket string) error {
	if m.opts.OpenInstall && ticket == "" {
		return nil
	}
	_, err := m.grants.PeekTicket(ctx, ticket, m.opts.Clock.Now())
	if errors.Is(err, grants.ErrInvalid) {
		return ErrInstallForbidden
	}
	return err
}

// StartInstall uses the ticket (none needed with OpenInstall) and opens an
// install: it returns where to send the browser and the secret the browser
// must present at the callback.
func (m *Manager) StartInstall(ctx context.Context, ticket string) (authorizeURL, browser string, err error) {
	now := m.opts.Clock.Now()
	st := grants.State{ExpiresAt: now.Add(grants.StateLifetime)}
	if ticket != "" || !m.opts.OpenInstall {
		t, err := m.grants.UseTicket(ctx, ticket, now)
		if errors.Is(err, grants.ErrInvalid) {
			return "", "", ErrInstallForbidden
		}
		if err != nil {
			return "", "", err
		}
		st.Ticketed, st.CompanyID = true, t.CompanyID
	}
	state, browser, err := m.grants.NewState(ctx, st)
	if err != nil {
		return "", "", err
	}
	return m.api.AuthorizeURL(m.opts.OAuthRedirectURL, state), browser, nil
}

// Callback is what the OAuth callback brings: the query's state, code and
// error, and the browser's secret from its cookie.
type Callback struct {
	State, Code, Error string
	Browser            string
}

// FinishInstall completes an install: it redeems the state (ErrBadState,
// before any call to Pipedrive), exchanges the code (ErrRejected), stores
// the company under the connect rules (an *InstallError) and reconciles it.
func (m *Manager) FinishInstall(ctx context.Context, cb Callback) (View, error) {
	st, err := m.grants.UseState(ctx, cb.State, cb.Browser, m.opts.Clock.Now())
	if errors.Is(err, grants.ErrInvalid) {
		return View{}, ErrBadState
	}
	if err != nil {
		return View{}, err
	}
	if cb.Error != "" {
		return View{}, fmt.Errorf("%w (%s)", ErrDenied, cb.Error)
	}
	if cb.Code == "" {
		return View{}, fmt.Errorf("%w: Pipedrive sent no authorisation code", ErrRejected)
	}
	return m.connectOAuth(ctx, cb.Code, st)
}

// connectOAuth exchanges the authorisation code of an install (an
// ErrRejected if Pipedrive does not), stores the company and reconciles it.
func (m *Manager) connectOAuth(ctx context.Context, code string, st grants.State) (View, error) {
	tok, err := m.api.ExchangeCode(ctx, code, m.opts.OAuthRedirectURL)
	if err != nil {
		return View{}, fmt.Errorf("%w: the authorisation code: %v", ErrRejected, err)
	}
	me, err := m.api.Me(ctx, pipedrive.DomainFromAPIDomain(tok.APIDomain), pipedrive.Credentials{AccessToken: tok.AccessToken})
	if err != nil {
		return View{}, fmt.Errorf("failed to identify the company: %w", err)
	}
	if st.CompanyID != 0 && st.CompanyID != me.CompanyID {
		return View{}, &InstallError{Err: ErrWrongCompany, CompanyID: me.CompanyID, Want: st.CompanyID}
	}
	mayReplace := st.CompanyID == me.CompanyID
	c, err := m.upsert(ctx, me, store.AuthOAuth, func(s *store.Secrets) {
		s.AccessToken, s.RefreshToken, s.AccessExpiresAt = tok.AccessToken, tok.RefreshToken, tok.ExpiresAt
	}, func(c *store.Company) error {
		if c.Auth == store.AuthAPIToken && !mayReplace {
			return &InstallError{Err: ErrAPITokenConnected, CompanyID: c.ID}
		}
		return nil
	})
	if err != nil {
		return View{}, err
	}
	return m.reconcileAndGet(ctx, c.ID)
}
