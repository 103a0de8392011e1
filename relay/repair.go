package relay

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// What nats-server does when DATA_DIR runs out of space (v2.15.2, read from
// its source), and what the monitor relies on:
//
//   - A stream with one replica writes each message to its block file before
//     the PubAck: server/stream.go addStreamWithAssignmentAndMode allows
//     AsyncFlush only for Replicas > 1, and filestore.go
//     writeMsgRecordLocked then flushes in place. ENOSPC therefore fails
//     that write: nothing unacknowledged is stored, nothing acknowledged is
//     lost.
//   - The first write error is kept, in the block (mb.werr), the store
//     (filestore.go setWriteErr) and the stream (stream.go
//     setWriteErrLocked), and every later StoreMsg returns it at once. The
//     publisher gets no answer at all (stream.go
//     processJetStreamMsgWithBatch only logs "JetStream failed to store a
//     msg" for I/O errors), so each publish waits PUBLISH_TIMEOUT. Freeing
//     space changes nothing: the error stays until the store is opened
//     again.
//   - JetStream stays enabled on a single server: it is shut down on "no
//     space left" only for clustered streams (jetstream_cluster.go
//     monitorStream calls jetstream.go handleOutOfSpace), the raft log
//     (raft.go setWriteErrLocked) and mirrors and sources (stream.go
//     processInboundMirrorMsg, processInboundSourceMsg); a write permission
//     error turns it off too (stream.go, jetstream.go
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
// once while the stream's store is broken (instead of after
// PUBLISH_TIMEOUT), and restarts JetStream as soon as DATA_DIR has room
// again. With an external NATS it cannot see or reopen the server's store:
// readiness says that publishes fail, and the operator repairs the server.

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

// restartJetStream turns JetStream off and on again, which reloads every
// stream from DATA_DIR. It is how a stream with a write error gets written
// again: nats-server keeps a store's first write error and returns it for
// every later write (server/filestore.go setWriteErr, StoreMsg), until the
// store is opened again.
func (r *Relay) restartJetStream() error {
	if err := r.srv.ShutdownJetStream(); err != nil {
		return fmt.Errorf("failed to stop JetStream: %w", err)
	}
	// MaxMemory 0 lets the server size memory as at start; MaxStore is the
	// limit it started with (0: derived again from the free space).
	if err := r.srv.EnableJetStream(&server.JetStreamConfig{StoreDir: r.dataDir, MaxStore: r.maxStore}); err != nil {
		return fmt.Errorf("failed to start JetStream again: %w", err)
	}
	return nil
}
