package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

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
Connects to NATS_URL, else to EMBEDDED_NATS_LISTEN of a running gateway.`

func runTail(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) error {
	fs := newFlagSet("tail", "[--all] [SUBJECT]", tailAbout, stderr)
	all := fs.Bool("all", false, "print the events already in the stream first, not only new ones")
	if err := fs.Parse(args); err != nil {
		return err
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
	if fs.NArg() > 1 {
		return fmt.Errorf("tail takes at most one subject")
	}
	if fs.NArg() == 1 {
		subject = fs.Arg(0)
	}
	url := cfg.NATS.URL
	opts := []nats.Option{nats.Name("pipedrive-gateway tail")}
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
	cc := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if *all {
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, cfg.Stream.Name, cc)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s not found at %s: start the gateway first", cfg.Stream.Name, url)
		}
		return fmt.Errorf("failed to follow %s on stream %s: %w", subject, cfg.Stream.Name, err)
	}
	fmt.Fprintf(stderr, "following %s on stream %s at %s (Ctrl-C to stop)\n", subject, cfg.Stream.Name, url)
	enc := json.NewEncoder(stdout)
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
				continue
			}
			return fmt.Errorf("failed to read from stream: %w", err)
		}
		if err := enc.Encode(toTailLine(msg)); err != nil {
			return err
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
