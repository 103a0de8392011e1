package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/relay"
)

// tailLine is one printed event.
type tailLine struct {
	Subject string            `json:"subject"`
	Headers map[string]string `json:"headers"`
	Data    json.RawMessage   `json:"data"`
}

const tailAbout = `Prints each event of the stream as one JSON line: {"subject","headers","data"}.
Connects to NATS_URL, else to EMBEDDED_NATS_LISTEN of a running gateway, and
follows it across restarts of the gateway.`

// tailRetry is how long tail waits before looking for the stream again
// while the gateway (or its NATS) is away.
const tailRetry = 500 * time.Millisecond

func runTail(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) error {
	fs := newFlagSet("tail", "[--all] [SUBJECT]", tailAbout, stderr)
	all := fs.Bool("all", false, "print the events already in the stream first, not only new ones")
	subjects, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(subjects) > 1 {
		fs.Usage()
		return usageErrorf("tail takes at most one subject, got %d: %s", len(subjects), strings.Join(subjects, " "))
	}
	// Only the NATS and stream settings matter here; the rest of the
	// configuration is not validated so that tail works from any shell.
	var cfg struct {
		NATS   config.NATS
		Stream config.Stream
	}
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &cfg, Lookuper: env}); err != nil {
		return fmt.Errorf("invalid settings: %w", err)
	}
	subject := cfg.Stream.SubjectPrefix + ".>"
	if len(subjects) == 1 {
		subject = subjects[0]
	}
	url := cfg.NATS.URL
	// The gateway may restart while tail runs: reconnect for ever, and say so.
	opts := []nats.Option{
		nats.Name("pipedrive-gateway tail"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(tailRetry),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				fmt.Fprintf(stderr, "lost the connection to %s (%v); reconnecting\n", url, err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { fmt.Fprintf(stderr, "reconnected to %s\n", url) }),
	}
	if url == "" {
		url = "nats://" + cfg.NATS.EmbeddedURL
	} else {
		extra, err := relay.ExternalOptions(cfg.NATS)
		if err != nil {
			return err
		}
		opts = append(opts, extra...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("cannot reach NATS at %s (is the gateway running?): %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	t := &tailer{js: js, stream: cfg.Stream.Name, subject: subject, out: json.NewEncoder(stdout), stderr: stderr}
	info, err := t.streamInfo(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s not found at %s: start the gateway first", cfg.Stream.Name, url)
		}
		return fmt.Errorf("failed to read stream %s: %w", cfg.Stream.Name, err)
	}
	if !slices.ContainsFunc(info.Config.Subjects, func(s string) bool { return relay.SubjectsOverlap(subject, s) }) {
		fmt.Fprintf(stderr, "warning: %s is outside stream %s, which captures %s: nothing will be printed\n",
			subject, info.Config.Name, strings.Join(info.Config.Subjects, " "))
	}
	t.next = info.State.LastSeq + 1
	if *all {
		t.next = 1
	}
	fmt.Fprintf(stderr, "following %s on stream %s at %s (Ctrl-C to stop)\n", subject, cfg.Stream.Name, url)
	return t.follow(ctx)
}

// tailer prints the stream from sequence next on, and starts again from
// there whenever its consumer is lost (a gateway restart, a NATS outage).
type tailer struct {
	js              jetstream.JetStream
	stream, subject string
	out             *json.Encoder
	stderr          io.Writer
	next            uint64 // stream sequence of the next event to print
}

func (t *tailer) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := t.js.Stream(cctx, t.stream)
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
}

// follow returns nil when ctx ends (Ctrl-C, SIGTERM), an error only when
// printing fails.
func (t *tailer) follow(ctx context.Context) error {
	waiting := false
	resumed := func() {
		if waiting {
			fmt.Fprintf(t.stderr, "following %s on stream %s again from sequence %d\n", t.subject, t.stream, t.next)
			waiting = false
		}
	}
	for ctx.Err() == nil {
		err := t.consume(ctx, resumed)
		if ctx.Err() != nil {
			break
		}
		var pe printError
		if errors.As(err, &pe) {
			return pe.err
		}
		if !waiting {
			fmt.Fprintf(t.stderr, "lost stream %s (%v); waiting for it to come back\n", t.stream, err)
			waiting = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(tailRetry):
		}
		// A stream made anew (a fresh DATA_DIR) numbers from 1 again:
		// everything in it is new to us.
		if info, err := t.streamInfo(ctx); err == nil && info.State.LastSeq+1 < t.next {
			t.next = 1
		}
	}
	return nil
}

// printError is a failure to write to stdout: tail stops.
type printError struct{ err error }

func (e printError) Error() string { return e.err.Error() }

// consume prints events until its consumer fails; started is called once
// the consumer exists.
func (t *tailer) consume(ctx context.Context, started func()) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	cons, err := t.js.OrderedConsumer(cctx, t.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{t.subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    t.next,
	})
	cancel()
	if err != nil {
		return err
	}
	started()
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, jetstream.ErrNoMessages), errors.Is(err, nats.ErrTimeout):
			continue
		case err != nil:
			return err
		}
		if err := t.out.Encode(toTailLine(msg)); err != nil {
			return printError{err}
		}
		if md, err := msg.Metadata(); err == nil {
			t.next = md.Sequence.Stream + 1
		}
	}
}

func toTailLine(msg jetstream.Msg) tailLine {
	l := tailLine{Subject: msg.Subject(), Headers: map[string]string{}}
	keys := make([]string, 0, len(msg.Headers()))
	for k := range msg.Headers() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		l.Headers[k] = msg.Headers().Get(k)
	}
	data := msg.Data()
	if json.Valid(data) {
		l.Data = data
	} else {
		l.Data, _ = json.Marshal(string(data))
	}
	return l
}
