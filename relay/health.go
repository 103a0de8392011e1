package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
)

// How often the monitor looks at the path to storage: while it is fine, and
// while it is not (then it repairs, and readiness must follow quickly).
const (
	healthyInterval   = 2 * time.Second
	unhealthyInterval = 250 * time.Millisecond
	// failHold is how long a failed publish alone (no cause found) keeps
	// readiness failing; the next acknowledged publish ends it sooner.
	failHold = 5 * time.Second
)

// health is what the monitor last found.
type health struct {
	kicks  chan struct{}
	status atomic.Pointer[error] // the last verdict: nil error = can store
	// down is set while no publish can succeed (a store that keeps its
	// write error, JetStream off): Publish fails at once instead of
	// waiting for an ack that cannot come.
	down atomic.Pointer[error]

	failing atomic.Bool // a publish failed and none succeeded since
	mu      sync.Mutex
	failErr error
	failAt  time.Time

	lastRestart time.Time
	restartWait time.Duration

	stats atomic.Pointer[streamStats]
}

func (h *health) init() { h.kicks = make(chan struct{}, 1) }

// kick asks the monitor to look now; it never blocks.
func (h *health) kick() {
	select {
	case h.kicks <- struct{}{}:
	default:
	}
}

func (h *health) set(err error) { h.status.Store(&err) }

func (h *health) get() error {
	if p := h.status.Load(); p != nil {
		return *p
	}
	return errors.New("not checked yet")
}

// published is called after every acknowledged publish: one atomic load on
// the hot path.
func (h *health) published() {
	if h.failing.Load() {
		h.failing.Store(false)
		h.kick()
	}
}

// publishFailed is called when a publish got no PubAck.
func (h *health) publishFailed(err error) {
	h.mu.Lock()
	h.failErr, h.failAt = err, time.Now()
	h.mu.Unlock()
	h.failing.Store(true)
	h.kick()
}

// publishError is the readiness verdict from the publish path alone.
func (h *health) publishError() error {
	if !h.failing.Load() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.failAt) > failHold {
		return nil
	}
	return fmt.Errorf("publishes are failing: %w", h.failErr)
}

// mayRestart spaces restarts of JetStream out (1 s, doubling to 30 s) when
// they do not help, e.g. a disk that fills again at once.
func (h *health) mayRestart(now time.Time) bool {
	since := now.Sub(h.lastRestart)
	if since < h.restartWait {
		return false
	}
	if since > 5*time.Minute {
		h.restartWait = time.Second
	} else {
		h.restartWait = min(max(2*h.restartWait, time.Second), 30*time.Second)
	}
	h.lastRestart = now
	return true
}

// monitor looks at the path to storage every healthyInterval, every
// unhealthyInterval while it is broken, and at once when a publish fails,
// the connection comes back or the embedded server logs an error; it
// repairs what the settings allow and keeps the verdict for Ready.
func (r *Relay) monitor(ctx context.Context) error {
	t := time.NewTimer(healthyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-r.fatal:
			return err
		case <-r.health.kicks:
		case <-t.C:
		}
		err := r.check(ctx)
		was := r.health.get()
		r.health.set(err)
		switch {
		case err != nil && (was == nil || was.Error() != err.Error()):
			r.log.Warn("cannot store events", "reason", err.Error())
		case err == nil && was != nil:
			r.log.Info("can store events again", "was", was.Error())
		}
		next := healthyInterval
		if err != nil {
			next = unhealthyInterval
		}
		t.Reset(next)
	}
}

// Ready reports nil when the gateway can store events: NATS connected,
// JetStream enabled, the stream present and capturing <prefix>.> (with
// STREAM_MANAGE=off also keeping duplicates for DEDUPE_WINDOW), publishes
// not failing; else the reason. It answers from the monitor's last look
// (at most healthyInterval old) after a fresh look at the connection.
func (r *Relay) Ready(context.Context) error {
	if !r.nc.IsConnected() {
		return fmt.Errorf("not connected to NATS (%s)", r.nc.Status())
	}
	if r.srv != nil && !r.srv.JetStreamEnabled() {
		return errors.New("JetStream is disabled on the embedded server")
	}
	if err := r.health.get(); err != nil {
		return err
	}
	return r.health.publishError()
}

// check finds the first reason why events cannot be stored, repairing on
// the way what it may.
func (r *Relay) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if r.srv != nil {
		if err := r.checkEmbedded(); err != nil {
			return err
		}
	}
	if !r.nc.IsConnected() {
		return fmt.Errorf("not connected to NATS (%s)", r.nc.Status())
	}
	info, err := r.streamInfo(ctx)
	if err != nil {
		if errors.Is(err, errPayloadTooSmall) {
			select {
			case r.fatal <- err:
			default:
			}
		}
		return err
	}
	stats := &streamStats{bytes: int64(info.State.Bytes), msgs: int64(info.State.Msgs), limit: limit(info.Config.MaxBytes)}
	defer r.health.stats.Store(stats)
	if err := r.checkStream(info.Config); err != nil {
		return err
	}
	if err := r.checkStoreLimit(stats); err != nil {
		return err
	}
	return r.health.publishError()
}

// streamInfo reads the stream, after setting it up if that has not
// happened yet, and makes it again when it is gone and STREAM_MANAGE allows.
func (r *Relay) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	if !r.isApplied() {
		if err := r.ensureStream(ctx); err != nil {
			return nil, err
		}
	}
	s, err := r.js.Stream(ctx, r.cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if r.cfg.Manage == config.StreamOff {
			return nil, fmt.Errorf("stream %s not found (%w)", r.cfg.Name, errStreamOff)
		}
		r.log.Warn("stream is gone, creating it again", "stream", r.cfg.Name)
		if err := r.ensureStream(ctx); err != nil {
			return nil, err
		}
		s, err = r.js.Stream(ctx, r.cfg.Name)
	}
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return nil, fmt.Errorf("JetStream is not enabled on the NATS server (a server turns it off after a storage error): %w", err)
	case err != nil:
		return nil, fmt.Errorf("stream %s: %w", r.cfg.Name, err)
	}
	return s.CachedInfo(), nil
}

func (r *Relay) isApplied() bool {
	r.ensureMu.Lock()
	defer r.ensureMu.Unlock()
	return r.applied
}
