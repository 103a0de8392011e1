package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
)

var (
	errPayloadTooSmall = errors.New("MAX_BODY_BYTES does not fit the NATS server's max payload")
	// errStreamOff: the stream is missing and STREAM_MANAGE=off forbids
	// making it; not fatal, readiness reports it until someone does.
	errStreamOff = errors.New("STREAM_MANAGE=off: the gateway does not create it")
)

// StreamConfig is the stream the gateway declares: every subject under the
// prefix, file storage, a duplicate window that covers Pipedrive's retries,
// and at STREAM_MAX_BYTES the oldest events go, so ingest never fails
// because the stream is full.
func (r *Relay) StreamConfig() jetstream.StreamConfig {
	c := jetstream.StreamConfig{
		Name:              r.cfg.Name,
		Description:       "Pipedrive webhook events relayed by pipedrive-gateway",
		Subjects:          []string{r.subjects()},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            r.cfg.MaxAge,
		Replicas:          r.cfg.Replicas,
		Duplicates:        r.cfg.DedupeWindow,
		MaxMsgSize:        int32(r.maxMsg),
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: -1,
	}
	if r.cfg.MaxBytes > 0 {
		c.MaxBytes = int64(r.cfg.MaxBytes)
	}
	return c
}

// subjects is what the stream must capture: <prefix>.>.
func (r *Relay) subjects() string { return r.cfg.SubjectPrefix + ".>" }

// ensureStream checks the server's max payload against MAX_BODY_BYTES and
// sets the stream up as STREAM_MANAGE says: update makes an existing stream
// follow the settings (once, at start), create and update make a missing
// one, off touches nothing. Every difference between an existing stream and
// the settings is logged, whatever the mode.
func (r *Relay) ensureStream(ctx context.Context) error {
	r.ensureMu.Lock()
	defer r.ensureMu.Unlock()
	if mp := r.nc.MaxPayload(); mp > 0 && mp < r.maxMsg {
		return fmt.Errorf("%w: the server allows %d bytes, MAX_BODY_BYTES needs %d (body plus 64KiB for headers)",
			errPayloadTooSmall, mp, r.maxMsg)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	want := r.StreamConfig()
	s, err := r.js.Stream(ctx, r.cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if r.cfg.Manage == config.StreamOff {
			return fmt.Errorf("stream %s not found (%w)", r.cfg.Name, errStreamOff)
		}
		if _, err := r.js.CreateStream(ctx, want); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("failed to create stream %s: %w", r.cfg.Name, err)
		}
		r.log.Info("stream created", "stream", r.cfg.Name, "subjects", want.Subjects,
			"max_age", want.MaxAge.String(), "max_bytes", want.MaxBytes, "replicas", want.Replicas,
			"duplicate_window", want.Duplicates.String(), "stream_manage", r.cfg.Manage)
		r.applied = true
		return nil
	case err != nil:
		return fmt.Errorf("failed to look up stream %s: %w", r.cfg.Name, err)
	}
	if r.applied {
		return nil
	}
	diffs := streamDiff(want, s.CachedInfo().Config)
	switch {
	case len(diffs) == 0:
		r.log.Info("stream ready", "stream", r.cfg.Name, "stream_manage", r.cfg.Manage)
	case r.cfg.Manage == config.StreamUpdate:
		if _, err := r.js.UpdateStream(ctx, want); err != nil {
			return fmt.Errorf("failed to update stream %s to the settings (%s): %w", r.cfg.Name, strings.Join(diffs, "; "), err)
		}
		r.log.Warn("stream differed from the settings and was updated (STREAM_MANAGE=update)", "stream", r.cfg.Name, "changed", diffs)
	default:
		r.log.Warn("stream differs from the settings and is left as it is (STREAM_MANAGE="+r.cfg.Manage+")", "stream", r.cfg.Name, "differences", diffs)
	}
	r.applied = true
	return nil
}

// streamDiff lists, in the settings' words, where have differs from want.
func streamDiff(want, have jetstream.StreamConfig) []string {
	var d []string
	add := func(name string, h, w any) {
		d = append(d, fmt.Sprintf("%s: stream has %v, settings want %v", name, h, w))
	}
	if !slices.Equal(have.Subjects, want.Subjects) {
		add("subjects (SUBJECT_PREFIX)", have.Subjects, want.Subjects)
	}
	if have.MaxAge != want.MaxAge {
		add("max age (STREAM_MAX_AGE)", ageText(have.MaxAge), ageText(want.MaxAge))
	}
	if limit(have.MaxBytes) != limit(want.MaxBytes) {
		add("max bytes (STREAM_MAX_BYTES)", limitText(have.MaxBytes), limitText(want.MaxBytes))
	}
	if limit(have.MaxMsgs) != limit(want.MaxMsgs) {
		add("max messages", limitText(have.MaxMsgs), limitText(want.MaxMsgs))
	}
	if limit(have.MaxMsgsPerSubject) != limit(want.MaxMsgsPerSubject) {
		add("max messages per subject", limitText(have.MaxMsgsPerSubject), limitText(want.MaxMsgsPerSubject))
	}
	if have.Discard != want.Discard {
		add("discard policy", have.Discard, want.Discard)
	}
	if max(have.Replicas, 1) != max(want.Replicas, 1) {
		add("replicas (STREAM_REPLICAS)", have.Replicas, want.Replicas)
	}
	if have.Duplicates != want.Duplicates {
		add("duplicate window (DEDUPE_WINDOW)", have.Duplicates, want.Duplicates)
	}
	if limit(int64(have.MaxMsgSize)) != limit(int64(want.MaxMsgSize)) {
		add("max message size (MAX_BODY_BYTES + 64KiB)", limitText(int64(have.MaxMsgSize)), limitText(int64(want.MaxMsgSize)))
	}
	if have.Storage != want.Storage {
		add("storage", have.Storage, want.Storage)
	}
	if have.Retention != want.Retention {
		add("retention", have.Retention, want.Retention)
	}
	return d
}

// limit folds NATS's two spellings of "no limit" (0 and -1) into one.
func limit(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

func limitText(n int64) string {
	if n <= 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

func ageText(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return d.String()
}

// checkStream is the readiness verdict on an existing stream: it must
// capture <prefix>.>, and with STREAM_MANAGE=off also keep duplicates for
// at least DEDUPE_WINDOW (the gateway does not fix what it does not own).
func (r *Relay) checkStream(c jetstream.StreamConfig) error {
	if !slices.ContainsFunc(c.Subjects, func(f string) bool { return SubjectCovers(f, r.subjects()) }) {
		return fmt.Errorf("stream %s captures %v, not %s: events cannot be stored", c.Name, c.Subjects, r.subjects())
	}
	if r.cfg.Manage == config.StreamOff && c.Duplicates < r.cfg.DedupeWindow {
		return fmt.Errorf("stream %s keeps duplicates for %v, less than DEDUPE_WINDOW %v (STREAM_MANAGE=off: fix the stream)",
			c.Name, c.Duplicates, r.cfg.DedupeWindow)
	}
	return nil
}
