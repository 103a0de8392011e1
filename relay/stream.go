package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var errPayloadTooSmall = errors.New("MAX_BODY_BYTES does not fit the NATS server's max payload")

// StreamConfig is the stream the gateway declares: every subject under the
// prefix, file storage, and a duplicate window that covers Pipedrive's retries.
func (r *Relay) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        r.cfg.Name,
		Description: "Pipedrive webhook events relayed by pipedrive-gateway",
		Subjects:    []string{r.cfg.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      r.cfg.MaxAge,
		Replicas:    r.cfg.Replicas,
		Duplicates:  r.cfg.DedupeWindow,
		MaxMsgSize:  int32(r.maxMsg),
	}
}

// ensureStream checks the server's max payload against MAX_BODY_BYTES and
// creates or updates the stream.
func (r *Relay) ensureStream(ctx context.Context) error {
	r.ensureMu.Lock()
	defer r.ensureMu.Unlock()
	if mp := r.nc.MaxPayload(); mp > 0 && mp < r.maxMsg {
		return fmt.Errorf("%w: the server allows %d bytes, MAX_BODY_BYTES needs %d (body plus 64KiB for headers)",
			errPayloadTooSmall, mp, r.maxMsg)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.js.CreateOrUpdateStream(ctx, r.StreamConfig()); err != nil {
		return fmt.Errorf("failed to create or update stream %s: %w", r.cfg.Name, err)
	}
	if !r.streamReady.Swap(true) {
		r.log.Info("stream ready", "stream", r.cfg.Name, "subjects", r.cfg.SubjectPrefix+".>",
			"max_age", r.cfg.MaxAge.String(), "replicas", r.cfg.Replicas,
			"duplicate_window", r.cfg.DedupeWindow.String())
	}
	return nil
}

// repairStream re-declares the stream after a (re)connect or a failed
// readiness check: a NATS server that lost its store comes back without it.
func (r *Relay) repairStream() {
	if !r.started.Load() {
		return // New declares the stream itself once connected
	}
	err := r.ensureStream(context.Background())
	switch {
	case err == nil:
	case errors.Is(err, errPayloadTooSmall):
		select {
		case r.fatal <- err:
		default:
		}
	default:
		r.log.Warn("stream not ready", "stream", r.cfg.Name, "error", err)
	}
}
