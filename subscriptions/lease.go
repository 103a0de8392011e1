package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leaseKey is the single key of the leader bucket.
const leaseKey = "leader"

// Lease elects one leader among the replicas with a NATS KV key: whoever
// creates it leads and renews it; the bucket's max age expires it when the
// leader stops renewing, so another replica takes over within about one TTL.
type Lease struct {
	kv  jetstream.KeyValue
	id  string
	ttl time.Duration
	log *slog.Logger
	// onChange is told when this replica gains or loses the lead.
	onChange func(leader bool)
}

// OpenLease creates or opens the lease bucket.
func OpenLease(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, id string, ttl time.Duration, log *slog.Logger) (*Lease, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "pipedrive-gateway leader lease",
		History:     1,
		TTL:         ttl,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open lease bucket %s: %w", bucket, err)
	}
	return &Lease{kv: kv, id: id, ttl: ttl, log: log}, nil
}

// Run campaigns until ctx ends. While this replica leads, lead runs with a
// context that is cancelled as soon as the lease cannot be renewed; Run
// waits for lead to return before campaigning again, so two leaders never
// overlap on this replica's side.
func (l *Lease) Run(ctx context.Context, lead func(ctx context.Context)) error {
	tick := l.ttl / 3
	for {
		rev, err := l.kv.Create(ctx, leaseKey, []byte(l.id))
		if err == nil {
			l.hold(ctx, rev, lead)
		} else if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			l.log.Debug("lease campaign failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(tick):
		}
	}
}

// hold leads until the lease is lost or ctx ends.
func (l *Lease) hold(ctx context.Context, rev uint64, lead func(ctx context.Context)) {
	l.log.Info("became leader", "replica", l.id)
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
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-done
			// Hand over at once instead of making the others wait a TTL.
			dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = l.kv.Delete(dctx, leaseKey, jetstream.LastRevision(rev))
			dcancel()
			l.log.Info("released leadership", "replica", l.id)
			return
		case <-t.C:
			rctx, rcancel := context.WithTimeout(ctx, l.ttl/3)
			nrev, err := l.kv.Update(rctx, leaseKey, []byte(l.id), rev)
			rcancel()
			if err == nil {
				rev, renewed = nrev, time.Now()
				continue
			}
			// Step down before the key can expire and someone else lead.
			if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) || time.Since(renewed) > l.ttl*2/3 {
				l.log.Warn("lost leadership", "replica", l.id, "error", err)
				return
			}
		}
	}
}

func (l *Lease) notify(leader bool) {
	if l.onChange != nil {
		l.onChange(leader)
	}
}
