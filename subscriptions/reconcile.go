package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// webhookAPI is the part of the Pipedrive client the reconciler uses.
type webhookAPI interface {
	ListWebhooks(ctx context.Context, domain string, cred pipedrive.Credentials) ([]pipedrive.Webhook, error)
	CreateWebhook(ctx context.Context, domain string, cred pipedrive.Credentials, req pipedrive.CreateWebhookRequest) (pipedrive.Webhook, error)
	DeleteWebhook(ctx context.Context, domain string, cred pipedrive.Credentials, id int64) error
	Refresh(ctx context.Context, refreshToken string) (pipedrive.Token, error)
}

// reconciler brings one company's webhooks to the wanted state: a reconcile
// wants one correct webhook, a disconnect wants none. Both list, plan and
// run the plan through execute; nothing else writes at Pipedrive.
type reconciler struct {
	store      *store.Store
	api        webhookAPI
	webhookURL func(companyID int64) string // nil: PUBLIC_URL not set
	name       string
	now        func() time.Time
	log        *slog.Logger
	metrics    Metrics
	tracer     trace.Tracer
	onWebhook  func(ctx context.Context, companyID int64, f WebhookFinding)
	pauses     *pauses
}

// result of one run, for the scheduler and the command reply.
type result struct {
	err error
	// permanent errors wait for the next resync; others back off.
	permanent bool
	// retryAfter is the least wait Pipedrive asked for.
	retryAfter time.Duration
	// gone: the company is no longer connected.
	gone   bool
	writes int
}

// Gone implements sched.Result.
func (r result) Gone() bool { return r.gone }

// Retry implements sched.Result.
func (r result) Retry() (bool, time.Duration) { return r.err != nil && !r.permanent, r.retryAfter }

// refreshMargin is how long before expiry an OAuth access token is renewed.
const refreshMargin = 5 * time.Minute

// desired is the webhook the company should have.
func (r *reconciler) desired(c *store.Company) desired {
	d := desired{Name: r.name, User: c.WebhookUser, Password: c.Secrets.WebhookPassword, KnownID: c.WebhookID}
	if r.webhookURL != nil {
		d.URL = r.webhookURL(c.ID)
	}
	return d
}

// reconcile reads the company and its webhooks fresh, applies the plan and
// records the outcome on the company.
func (r *reconciler) reconcile(ctx context.Context, id int64) (res result) {
	ctx = withCompany(ctx, id)
	ctx, span := r.tracer.Start(ctx, "reconcile company", trace.WithAttributes(attribute.Int64("pipedrive.company_id", id)))
	start := r.now()
	defer func() {
		span.SetAttributes(attribute.String("pipedrive.reconcile.result", res.outcome()), attribute.Int("pipedrive.reconcile.writes", res.writes))
		if res.err != nil {
			span.SetStatus(codes.Error, res.err.Error())
		}
		span.End()
		r.metrics.Reconciled(res.outcome(), r.now().Sub(start))
	}()
	c, err := r.store.Get(ctx, id)
	if errors.Is(err, store.ErrUnknownCompany) {
		return result{gone: true}
	}
	if errors.Is(err, store.ErrUnreadable) {
		// Never obeyed, never rewritten: wait for the next resync.
		return result{err: err, permanent: true}
	}
	if err != nil {
		return result{err: err}
	}
	if p := r.pauses.check(id, r.now()); p != nil {
		return *p // not a new outcome: the company keeps its status
	}
	res = r.apply(ctx, c)
	r.pauses.note(id, r.now(), res)
	r.record(ctx, c, res)
	return res
}

func (r *reconciler) apply(ctx context.Context, c *store.Company) result {
	if r.webhookURL == nil {
		return result{err: errors.New("PUBLIC_URL is not set: the gateway cannot register webhooks"), permanent: true}
	}
	if err := r.freshToken(ctx, c); err != nil {
		return classify(fmt.Errorf("failed to refresh the OAuth token: %w", err))
	}
	want := r.desired(c)
	hooks, err := r.api.ListWebhooks(ctx, c.Domain, c.Credentials())
	if err != nil {
		return classify(fmt.Errorf("failed to list webhooks: %w", err))
	}
	keep, acts := plan(want, hooks)
	created, res := r.execute(ctx, c, want, acts)
	r.finding(ctx, c, keep, created)
	if created != nil || keep != nil {
		// Stored with the outcome: the next finding's Seen.
		now := r.now().UTC()
		c.Status.WebhookSeen = &now
	}
	if res.err != nil {
		return res
	}
	if created != nil {
		keep = created
	}
	if keep != nil {
		c.WebhookID = keep.ID
		c.Status.LastHTTPStatus, c.Status.LastDeliveryTime = keep.LastHTTPStatus, keep.LastDeliveryTime
	}
	return res
}

// disconnect deletes the company's webhooks of ours, then forgets the
// company. The OAuth token is refreshed first if it has expired. A delete
// that fails keeps the company, with the reason, so that the next try
// deletes again; force forgets it all the same (the webhook left behind
// gets our 401s, and Pipedrive drops it after 3 days).
func (r *reconciler) disconnect(ctx context.Context, id int64, force bool) result {
	ctx = withCompany(ctx, id)
	c, err := r.store.Get(ctx, id)
	if errors.Is(err, store.ErrUnknownCompany) {
		return result{gone: true}
	}
	if err == nil {
		err = r.deleteOurs(ctx, c).err
	}
	if err != nil {
		if !force {
			return result{err: err, permanent: true}
		}
		r.log.WarnContext(ctx, "forced disconnect: forgetting the company without deleting its webhook", "company_id", id, "error", err)
	}
	if err := r.store.Delete(ctx, id); err != nil {
		return result{err: err}
	}
	r.log.InfoContext(ctx, "company disconnected", "company_id", id, "forced", force)
	return result{gone: true}
}

// deleteOurs deletes every webhook of ours at the company, unless
// Pipedrive asked to wait before calling again for it.
func (r *reconciler) deleteOurs(ctx context.Context, c *store.Company) result {
	if p := r.pauses.check(c.ID, r.now()); p != nil {
		return *p
	}
	res := r.deleteAll(ctx, c)
	r.pauses.note(c.ID, r.now(), res)
	return res
}

func (r *reconciler) deleteAll(ctx context.Context, c *store.Company) result {
	if err := r.freshToken(ctx, c); err != nil {
		return classify(fmt.Errorf("failed to refresh the OAuth token: %w", err))
	}
	want := r.desired(c)
	want.None = true
	hooks, err := r.api.ListWebhooks(ctx, c.Domain, c.Credentials())
	if err != nil {
		return classify(fmt.Errorf("failed to list webhooks: %w", err))
	}
	_, acts := plan(want, hooks)
	_, res := r.execute(ctx, c, want, acts)
	return res
}

// execute makes the plan's writes in order and stops at the first that
// fails: the next run lists again and plans from what is there. It
// returns the webhook it created, if any, and remembers it on c at once.
func (r *reconciler) execute(ctx context.Context, c *store.Company, want desired, acts []action) (created *pipedrive.Webhook, res result) {
	for _, a := range acts {
		switch a.Kind {
		case actCreate:
			w, err := r.api.CreateWebhook(ctx, c.Domain, c.Credentials(), pipedrive.CreateWebhookRequest{
				SubscriptionURL: want.URL, EventAction: "*", EventObject: "*", Name: want.Name,
				Version: "2.0", HTTPAuthUser: want.User, HTTPAuthPassword: want.Password,
			})
			if err != nil {
				// A lost response may still have created it: the next run
				// lists first and adopts it, so nothing is created twice.
				return nil, classify(fmt.Errorf("failed to create webhook: %w", err))
			}
			res.writes++
			created = &w
			c.WebhookID = w.ID
			r.log.InfoContext(ctx, "webhook created", "company_id", c.ID, "webhook_id", w.ID, "reason", a.Reason)
		case actDelete:
			err := r.api.DeleteWebhook(ctx, c.Domain, c.Credentials(), a.ID)
			res.writes++
			if err != nil && !errors.Is(err, pipedrive.ErrNotFound) { // 404: already gone
				return nil, classify(fmt.Errorf("failed to delete webhook %d: %w", a.ID, err))
			}
			r.log.InfoContext(ctx, "webhook deleted", "company_id", c.ID, "webhook_id", a.ID, "reason", a.Reason)
		}
	}
	return created, res
}

// freshToken renews an OAuth access token that expires soon and stores it.
func (r *reconciler) freshToken(ctx context.Context, c *store.Company) error {
	if c.Auth != store.AuthOAuth || r.now().Add(refreshMargin).Before(c.Secrets.AccessExpiresAt) {
		return nil
	}
	tok, err := r.api.Refresh(ctx, c.Secrets.RefreshToken)
	if err != nil {
		return err
	}
	applyToken(c, tok)
	if err := r.store.Update(ctx, c); err != nil {
		return fmt.Errorf("failed to store the refreshed token: %w", err)
	}
	r.log.InfoContext(ctx, "OAuth token refreshed", "company_id", c.ID, "expires_at", tok.ExpiresAt)
	return nil
}

func applyToken(c *store.Company, tok pipedrive.Token) {
	c.Secrets.AccessToken, c.Secrets.AccessExpiresAt = tok.AccessToken, tok.ExpiresAt
	if tok.RefreshToken != "" {
		c.Secrets.RefreshToken = tok.RefreshToken
	}
	if d := pipedrive.DomainFromAPIDomain(tok.APIDomain); d != "" {
		c.Domain = d
	}
}

// classify decides how long to wait after an error: Pipedrive's own hint,
// a back-off for what may pass, the next resync for what will not.
func classify(err error) result {
	res := result{err: err, retryAfter: pipedrive.RetryAfter(err)}
	var apiErr *pipedrive.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.DailyBudgetExhausted:
		res.permanent = true // until Pipedrive's midnight; the resync will do
	case errors.As(err, &apiErr) && apiErr.Blocked:
		res.retryAfter = max(res.retryAfter, 30*time.Minute)
	case pipedrive.Temporary(err):
	default:
		res.permanent = true
	}
	return res
}

// record writes the outcome on the company. A company deleted meanwhile is
// left deleted.
func (r *reconciler) record(ctx context.Context, c *store.Company, res result) {
	now := r.now().UTC()
	c.Status.LastReconcile = &now
	if res.err != nil {
		c.Status.State, c.Status.LastError = store.StateError, res.err.Error()
		r.log.WarnContext(ctx, "reconcile failed", "company_id", c.ID, "error", res.err, "permanent", res.permanent)
	} else {
		c.Status.State, c.Status.LastError = store.StateOK, ""
	}
	err := r.store.Update(ctx, c)
	if errors.Is(err, store.ErrConflict) {
		// Changed meanwhile (a new token, say): keep the new record and only
		// set the status on it.
		_, err = r.store.Modify(ctx, c.ID, func(n *store.Company) error {
			n.Status, n.WebhookID = c.Status, c.WebhookID
			return nil
		})
	}
	if err != nil && !errors.Is(err, store.ErrUnknownCompany) {
		r.log.ErrorContext(ctx, "failed to record reconcile result", "company_id", c.ID, "error", err)
	}
	r.metrics.Company(viewOf(c))
}
