package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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

// What nats-server does when DATA_DIR runs out of space (v2.15.2, read from
// its source), and what the monitor relies on:
//
//   - A stream with one replica writes each message to its block file before
//     the PubAck (server/stream.go: AsyncFlush only for Replicas > 1;
//     filestore.go writeMsgRecordLocked flushes in place). ENOSPC therefore
//     fails that write: nothing unacknowledged is stored, nothing
//     acknowledged is lost.
//   - The first write error is kept, in the block (mb.werr), the store
//     (filestore.go setWriteErr) and the stream (stream.go
//     setWriteErrLocked), and every later StoreMsg returns it at once. The
//     publisher gets no answer at all (stream.go processJetStreamMsg only
//     logs "JetStream failed to store a msg" for I/O errors), so each publish
//     waits PUBLISH_TIMEOUT. Freeing space changes nothing: the error stays
//     until the stream is opened again.
//   - JetStream stays enabled on a single server: ShutdownJetStream on "no
//     space left" happens only for clustered streams and the raft WAL
//     (jetstream.go handleOutOfSpace, raft.go setWriteErr) and for mirrors and
//     sources (stream.go processInboundMirrorMsg); on a write permission
//     error it turns JetStream off (stream.go, jetstream.go
//     handleWritePermissionError).
//   - Healthz without JSEnabledOnly reports the kept error ("JetStream stream
//     '$G > PIPEDRIVE' write error: … no space left on device",
//     monitor.go healthz), and ShutdownJetStream followed by EnableJetStream
//     reopens every stream from disk with the error gone (what
//     jetstream.go restartJetStream does on a config reload).
//   - At the JetStream store limit (JetStreamMaxStore) a publish is refused
//     at once with "insufficient resources" (jetstream.go limitsExceeded),
//     before anything is written.
//
// So with the embedded server the monitor watches Healthz, answers 503 at
// once while a store is broken (instead of after PUBLISH_TIMEOUT), and
// restarts JetStream as soon as DATA_DIR has room again. With an external
// NATS it cannot see or reopen the server's store: readiness says that
// publishes fail, and the operator repairs the server.

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

// checkEmbedded finds a broken store or JetStream turned off in the
// embedded server and restarts JetStream once DATA_DIR has room for a few
// messages again (see the comment at the top of this file). Publishes fail
// at once only while the event stream itself cannot be written; a broken
// store of another stream (the company state, a consumer's own stream)
// still gets JetStream restarted.
func (r *Relay) checkEmbedded() error {
	problem, ours := r.embeddedProblem()
	if problem == "" {
		r.health.down.Store(nil)
		return nil
	}
	err := fmt.Errorf("embedded JetStream cannot store events: %s", problem)
	if ours {
		r.health.down.Store(&err)
	}
	need := 2*r.maxMsg + 1<<20
	free := diskFree(r.dataDir)
	if free >= 0 && free < need {
		return fmt.Errorf("%w; JetStream restarts once DATA_DIR has %d bytes free (now %d)", err, need, free)
	}
	if !r.health.mayRestart(time.Now()) {
		return err
	}
	r.log.Warn("restarting embedded JetStream", "reason", problem, "data_dir_free_bytes", free)
	if rerr := r.restartJetStream(); rerr != nil {
		return fmt.Errorf("%w; %w", err, rerr)
	}
	if problem, _ := r.embeddedProblem(); problem != "" {
		return fmt.Errorf("embedded JetStream cannot store events after a restart: %s", problem)
	}
	r.health.down.Store(nil)
	r.log.Info("embedded JetStream restarted and writes again")
	return nil
}

// embeddedProblem is what the embedded server's health check finds, and
// whether it concerns the event stream (or all of JetStream).
func (r *Relay) embeddedProblem() (problem string, ours bool) {
	if !r.srv.JetStreamEnabled() {
		return "JetStream is disabled", true
	}
	hz := r.srv.Healthz(&server.HealthzOptions{Details: true})
	if hz.Status == "ok" {
		return "", false
	}
	var msgs []string
	for _, e := range hz.Errors {
		msgs = append(msgs, e.Error)
		ours = ours || e.Stream == r.cfg.Name || e.Stream == ""
	}
	return strings.Join(msgs, "; "), ours
}

// checkStoreLimit reports the JetStream store limit reached: every publish
// is then refused. It also completes stats.limit for a stream without
// STREAM_MAX_BYTES: the embedded server's store limit.
func (r *Relay) checkStoreLimit(stats *streamStats) error {
	if r.srv == nil {
		return nil
	}
	jsz, err := r.srv.Jsz(&server.JSzOptions{})
	if err != nil || jsz.Config.MaxStore <= 0 {
		return nil
	}
	if stats.limit <= 0 {
		stats.limit = jsz.Config.MaxStore
	}
	if jsz.Store >= uint64(jsz.Config.MaxStore) {
		return fmt.Errorf("JetStream store limit reached (%d of %d bytes under DATA_DIR): set STREAM_MAX_BYTES so that the oldest events are discarded, or give DATA_DIR more space",
			jsz.Store, jsz.Config.MaxStore)
	}
	return nil
}
