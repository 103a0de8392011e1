package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/backfill"
	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/lease"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// newBackfill builds gap detection and recovery (SPEC §8) unless BACKFILL is
// off. It recovers on a lease of its own, so that its runs never hold up
// the reconciler's.
func (a *Service) newBackfill(ctx context.Context, cfg *config.Config, api *pipedrive.Client, o options, log *slog.Logger) error {
	if !bool(cfg.Backfill.Enabled) {
		return nil
	}
	opts := backfill.Options{
		Bucket:      cfg.Stream.Name + "_GAPS",
		Replicas:    cfg.Stream.Replicas,
		MaxTokens:   cfg.Backfill.MaxTokens,
		Concurrency: cfg.Pipedrive.ReconcileConcurrency,
		Metrics:     backfill.NewOTelMetrics(o.tel.Meter),
	}
	if o.backfill != nil {
		o.backfill(&opts)
	}
	bf, err := backfill.New(ctx, opts, a.relay.JetStream(), a.relay, companies{a.subs}, backfill.PipedrivePlan(api), a.relay.Ready, log)
	if err != nil {
		return err
	}
	ttl := o.leaseTTL
	if ttl == 0 {
		ttl = 15 * time.Second
	}
	a.bfLease, err = lease.Open(ctx, a.relay.JetStream(), lease.Options{
		Bucket: cfg.Stream.Name + "_BACKFILL_LEADER", Replicas: cfg.Stream.Replicas, ID: replicaID(),
		TTL: ttl, Clock: clock.Real(), Log: log,
	})
	if err != nil {
		return err
	}
	a.bf = bf
	return nil
}

// webhookFinding hands the reconciler's findings to the gap detector.
func (a *Service) webhookFinding(ctx context.Context, id int64, f subscriptions.WebhookFinding) {
	if a.bf == nil {
		return
	}
	_ = a.bf.Webhook(ctx, id, backfill.WebhookReport{
		Present: f.Present, Created: f.Created, LastHTTPStatus: f.LastHTTPStatus, LastDeliveryTime: f.LastDeliveryTime,
		Seen: f.Seen,
	})
}

// companies gives the backfill the connected companies and their
// credentials.
type companies struct{ m *subscriptions.Manager }

func (c companies) CompanyIDs(ctx context.Context) ([]int64, error) { return c.m.CompanyIDs(ctx) }

func (c companies) ConnectedAt(ctx context.Context, id int64) (time.Time, error) {
	at, err := c.m.ConnectedAt(ctx, id)
	if errors.Is(err, subscriptions.ErrUnknownCompany) {
		return time.Time{}, fmt.Errorf("company %d: %w", id, backfill.ErrNotConnected)
	}
	return at, err
}

func (c companies) Target(ctx context.Context, id int64) (backfill.Target, error) {
	domain, cred, err := c.m.APICredentials(ctx, id)
	if errors.Is(err, subscriptions.ErrUnknownCompany) {
		return backfill.Target{}, fmt.Errorf("company %d: %w", id, backfill.ErrNotConnected)
	}
	if err != nil {
		return backfill.Target{}, err
	}
	return backfill.Target{CompanyID: id, Domain: domain, Credentials: cred}, nil
}

// replicaID names this replica in the backfill lease.
func replicaID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}
