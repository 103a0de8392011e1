// Package lease elects one leader among the replicas with a NATS KV key:
// whoever creates the key leads and renews it; the bucket's max age expires
// it when the leader stops renewing, so another replica takes over within
// about one TTL. It must not know what the leader does.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock"
)

// key is the single key of the leader bucket.
const key = "leader"

// Options configure a lease.
type Options struct {
	Bucket   string
	Replicas int
	// ID names this replica in the key.
	ID string
	// TTL bounds how long a dead leader blocks the others.
	TTL time.Duration
	// Clock paces campaigns and renewals. The key itself expires on the
	// NATS server's wall clock.
	Clock clock.Clock
	Log   *slog.Logger
	// OnChange, if set, is told when this replica gains or loses the lead.
	OnChange func(leader bool)
}

// Lease is one replica's side of the election.
type Lease struct {
	kv   jetstream.KeyValue
	opts Options
}

// Open creates or opens the lease bucket.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Lease, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      opts.Bucket,
		Description: "pipedrive-gateway leader lease",
		History:     1,
		TTL:         opts.TTL,
		Replicas:    opts.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open lease bucket %s: %w", opts.Bucket, err)
	}
	return &Lease{kv: kv, opts: opts}, nil
}

// Run campaigns until ctx ends. While this replica leads, lead runs with a
// context that is cancelled as soon as the lease cannot be renewed; Run
// waits for lead to return before campaigning again, so two leaders never
// overlap on this replica's side.
func (l *Lease) Run(ctx context.Context, lead func(ctx context.Context)) error {
	tick := l.opts.TTL / 3
	for {
		rev, err := l.kv.Create(ctx, key, []byte(l.opts.ID))
		if err == nil {
			l.hold(ctx, rev, lead)
		} else if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			l.opts.Log.Debug("lease campaign failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-l.opts.Clock.At(l.opts.Clock.Now().Add(tick)):
		}
	}
}

// hold leads until the lease is lost or ctx ends.
func (l *Lease) hold(ctx context.Context, rev uint64, lead func(ctx context.Context)) {
	l.opts.Log.Info("became leader", "replica", l.opts.ID)
	l.notify(true)
	defer l.notify(false)
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(lctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	tick := l.opts.TTL / 3
	renewed := l.opts.Clock.Now()
	next := renewed.Add(tick)
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-done
			// Hand over at once instead of making the others wait a TTL.
			dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = l.kv.Delete(dctx, key, jetstream.LastRevision(rev))
			dcancel()
			l.opts.Log.Info("released leadership", "replica", l.opts.ID)
			return
		case now := <-l.opts.Clock.At(next):
			// Like a ticker: a renewal that took long is followed by at
			// most one at once, not by a burst.
			if next = next.Add(tick); next.Before(now) {
				next = now
			}
			rctx, rcancel := context.WithTimeout(ctx, tick)
			nrev, err := l.kv.Update(rctx, key, []byte(l.opts.ID), rev)
			rcancel()
			if err == nil {
				rev, renewed = nrev, l.opts.Clock.Now()
				continue
			}
			// Step down before the key can expire and someone else lead.
			if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) || l.opts.Clock.Now().Sub(renewed) > l.opts.TTL*2/3 {
				l.opts.Log.Warn("lost leadership", "replica", l.opts.ID, "error", err)
				return
			}
		}
	}
}

func (l *Lease) notify(leader bool) {
	if l.opts.OnChange != nil {
		l.opts.OnChange(leader)
	}
}
