// Package config loads the gateway's settings from the environment (SPEC §2).
//
// Load never stops at the first bad value: every problem is collected and
// reported in one error that names each variable, so an operator fixes a
// broken deployment in one round trip.
//
// It must not know the parts it configures: it imports none of them, and
// they take plain values from it.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Config is the whole settings tree.
type Config struct {
	HTTP      HTTP
	NATS      NATS
	Stream    Stream
	Pipedrive Pipedrive
	Admin     Admin
	Backfill  Backfill
	Log       Log
}

// HTTP holds the two listeners.
type HTTP struct {
	Addr      string `env:"HTTP_ADDR, default=:8080"`
	OpsAddr   string `env:"OPS_ADDR, default=:9090"`
	PublicURL string `env:"PUBLIC_URL"`
	// MaxBodyBytes bounds a webhook body; larger bodies get 413.
	MaxBodyBytes ByteSize `env:"MAX_BODY_BYTES, default=512KiB"`
	// ShutdownDelay is how long the ingress keeps serving after SIGTERM,
	// with /readyz already failing, so a load balancer can take it out.
	ShutdownDelay time.Duration `env:"SHUTDOWN_DELAY, default=0s"`
	// WebhookUser and WebhookPassword are static Basic credentials accepted
	// for any company id (webhooks created by hand in Pipedrive).
	WebhookUser     string `env:"WEBHOOK_USER"`
	WebhookPassword string `env:"WEBHOOK_PASSWORD"`
}

// NATS selects an external server or the embedded default.
type NATS struct {
	URL         string `env:"NATS_URL"`
	Creds       string `env:"NATS_CREDS"`
	NKeySeed    string `env:"NATS_NKEY_SEED"`
	TLSCA       string `env:"NATS_TLS_CA"`
	TLSCert     string `env:"NATS_TLS_CERT"`
	TLSKey      string `env:"NATS_TLS_KEY"`
	EmbeddedURL string `env:"EMBEDDED_NATS_LISTEN, default=127.0.0.1:4222"`
	DataDir     string `env:"DATA_DIR, default=./data"`
}

// Embedded reports whether the gateway runs its own NATS server.
func (n NATS) Embedded() bool { return n.URL == "" }

// Stream describes the JetStream stream and how events are published to it.
type Stream struct {
	SubjectPrefix string        `env:"SUBJECT_PREFIX, default=pipedrive"`
	Name          string        `env:"STREAM_NAME, default=PIPEDRIVE"`
	MaxAge        time.Duration `env:"STREAM_MAX_AGE, default=168h"`
	// MaxBytes caps the stream (0: no cap); at the cap the oldest
	// messages go, so ingest never fails because the stream is full.
	MaxBytes       ByteSize      `env:"STREAM_MAX_BYTES, default=0"`
	Replicas       int           `env:"STREAM_REPLICAS, default=1"`
	DedupeWindow   time.Duration `env:"DEDUPE_WINDOW, default=10m"`
	PublishTimeout time.Duration `env:"PUBLISH_TIMEOUT, default=5s"`
	// Manage is how far the gateway owns the stream: StreamUpdate,
	// StreamCreate or StreamOff.
	Manage string `env:"STREAM_MANAGE, default=update"`
}

// STREAM_MANAGE values.
const (
	StreamUpdate = "update" // create, or update an existing stream to the settings
	StreamCreate = "create" // create when missing, never change an existing one
	StreamOff    = "off"    // never create or change; readiness checks it
)

// Pipedrive holds what the subscription manager needs to talk to Pipedrive.
type Pipedrive struct {
	APITokens      []string      `env:"PIPEDRIVE_API_TOKENS"`
	ClientID       string        `env:"PIPEDRIVE_CLIENT_ID"`
	ClientSecret   string        `env:"PIPEDRIVE_CLIENT_SECRET"`
	APIURL         string        `env:"PIPEDRIVE_API_URL"`
	OAuthURL       string        `env:"PIPEDRIVE_OAUTH_URL, default=https://oauth.pipedrive.com"`
	ResyncInterval time.Duration `env:"RESYNC_INTERVAL, default=1h"`
	WebhookName    string        `env:"WEBHOOK_NAME, default=pipedrive-gateway"`
	// ReconcileConcurrency bounds the companies the leader works on at once.
	ReconcileConcurrency int `env:"RECONCILE_CONCURRENCY, default=32"`
	// OAuthInstall is OAuthTicket (installs need a link from the admin
	// API) or OAuthOpen (a public Marketplace app).
	OAuthInstall string `env:"OAUTH_INSTALL, default=ticket"`
}

// OAUTH_INSTALL values.
const (
	OAuthTicket = "ticket"
	OAuthOpen   = "open"
)

// OAuthEnabled reports whether an OAuth app is configured.
func (p Pipedrive) OAuthEnabled() bool { return p.ClientID != "" && p.ClientSecret != "" }

// Admin holds the admin API token and the key that encrypts stored secrets.
type Admin struct {
	Token    string   `env:"ADMIN_TOKEN"`
	StateKey StateKey `env:"STATE_KEY"`
	// PreviousStateKeys are earlier keys: records sealed with one of them
	// are read and sealed again with StateKey.
	PreviousStateKeys StateKeys `env:"STATE_KEY_PREVIOUS"`
}

// Backfill configures gap recovery from the Pipedrive API.
type Backfill struct {
	Enabled   OnOff `env:"BACKFILL, default=on"`
	MaxTokens int   `env:"BACKFILL_MAX_TOKENS, default=5000"`
}

// Log configures slog.
type Log struct {
	Level  slog.Level `env:"LOG_LEVEL, default=info"`
	Format string     `env:"LOG_FORMAT, default=json"`
}

// Load reads the configuration through lookuper and validates it. The error
// lists every problem, one per variable, in a stable order.
func Load(ctx context.Context, lookuper envconfig.Lookuper) (*Config, error) {
	c, problems, err := decode(ctx, lookuper)
	if err != nil {
		return nil, fmt.Errorf("failed to read settings: %w", err)
	}
	problems = append(problems, c.Validate())
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks every setting and returns one error naming each bad variable.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	for _, a := range []struct{ name, addr string }{{"HTTP_ADDR", c.HTTP.Addr}, {"OPS_ADDR", c.HTTP.OpsAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			bad(a.name, "want host:port, got %q", a.addr)
		}
	}
	if c.NATS.Embedded() {
		if _, _, err := net.SplitHostPort(c.NATS.EmbeddedURL); err != nil {
			bad("EMBEDDED_NATS_LISTEN", "want host:port, got %q", c.NATS.EmbeddedURL)
		}
		if c.NATS.DataDir == "" {
			bad("DATA_DIR", "must not be empty with the embedded NATS server")
		}
	} else if len(c.Admin.StateKey) == 0 {
		bad("STATE_KEY", "required when NATS_URL is set (32 random bytes, standard base64)")
	}
	if (c.NATS.TLSCert == "") != (c.NATS.TLSKey == "") {
		bad("NATS_TLS_CERT", "NATS_TLS_CERT and NATS_TLS_KEY go together")
	}
	if c.HTTP.PublicURL != "" {
		if err := checkBaseURL(c.HTTP.PublicURL); err != nil {
			bad("PUBLIC_URL", "%v", err)
		}
	}
	if c.Pipedrive.APIURL != "" {
		if err := checkBaseURL(c.Pipedrive.APIURL); err != nil {
			bad("PIPEDRIVE_API_URL", "%v", err)
		}
	}
	if err := checkBaseURL(c.Pipedrive.OAuthURL); err != nil {
		bad("PIPEDRIVE_OAUTH_URL", "%v", err)
	}
	if !subjectToken(c.Stream.SubjectPrefix) {
		bad("SUBJECT_PREFIX", "want one subject token of [a-zA-Z0-9_-], got %q", c.Stream.SubjectPrefix)
	}
	if !streamName(c.Stream.Name) {
		bad("STREAM_NAME", "want a stream name of [a-zA-Z0-9_-], got %q", c.Stream.Name)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"STREAM_MAX_AGE", c.Stream.MaxAge}, {"DEDUPE_WINDOW", c.Stream.DedupeWindow},
		{"PUBLISH_TIMEOUT", c.Stream.PublishTimeout}, {"RESYNC_INTERVAL", c.Pipedrive.ResyncInterval},
	} {
		if d.d <= 0 {
			bad(d.name, "must be positive")
		}
	}
	if c.Stream.DedupeWindow > c.Stream.MaxAge && c.Stream.MaxAge > 0 {
		bad("DEDUPE_WINDOW", "must not exceed STREAM_MAX_AGE")
	}
	if r := c.Stream.Replicas; r < 1 || r > 5 {
		bad("STREAM_REPLICAS", "want 1 to 5, got %d", r)
	}
	if c.Stream.PublishTimeout >= 10*time.Second {
		// Pipedrive counts a delivery as failed after 10 s: a longer wait
		// only turns a 503 into a timeout that counts towards a ban.
		bad("PUBLISH_TIMEOUT", "must be under 10s, Pipedrive's delivery timeout")
	}
	if n := int64(c.HTTP.MaxBodyBytes); n < 1024 || n > MaxBodyLimit {
		bad("MAX_BODY_BYTES", "want 1KiB to %s, got %d bytes", "63MiB", n)
	}
	if n := int64(c.Stream.MaxBytes); n != 0 && n < 1<<20 {
		bad("STREAM_MAX_BYTES", "want 0 (no limit) or at least 1MiB, got %d bytes", n)
	}
	switch c.Stream.Manage {
	case StreamUpdate, StreamCreate, StreamOff:
	default:
		bad("STREAM_MANAGE", "want update, create or off, got %q", c.Stream.Manage)
	}
	if d := c.HTTP.ShutdownDelay; d < 0 || d > 5*time.Minute {
		bad("SHUTDOWN_DELAY", "want 0s to 5m, got %s", d)
	}
	if n := c.Pipedrive.ReconcileConcurrency; n < 1 || n > 1024 {
		bad("RECONCILE_CONCURRENCY", "want 1 to 1024, got %d", n)
	}
	switch c.Pipedrive.OAuthInstall {
	case OAuthTicket, OAuthOpen:
	default:
		bad("OAUTH_INSTALL", "want ticket or open, got %q", c.Pipedrive.OAuthInstall)
	}
	if len(c.Admin.PreviousStateKeys) > 0 && len(c.Admin.StateKey) == 0 {
		bad("STATE_KEY_PREVIOUS", "needs STATE_KEY, the key records are sealed with again")
	}
	if c.Backfill.MaxTokens < 1 {
		bad("BACKFILL_MAX_TOKENS", "must be positive, got %d", c.Backfill.MaxTokens)
	}
	if (c.HTTP.WebhookUser == "") != (c.HTTP.WebhookPassword == "") {
		bad("WEBHOOK_USER", "WEBHOOK_USER and WEBHOOK_PASSWORD go together")
	}
	if (c.Pipedrive.ClientID == "") != (c.Pipedrive.ClientSecret == "") {
		bad("PIPEDRIVE_CLIENT_ID", "PIPEDRIVE_CLIENT_ID and PIPEDRIVE_CLIENT_SECRET go together")
	}
	for i, tok := range c.Pipedrive.APITokens {
		if strings.TrimSpace(tok) == "" {
			bad("PIPEDRIVE_API_TOKENS", "entry %d is empty", i+1)
		}
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("LOG_FORMAT", "want json or text, got %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

// MaxBodyLimit is the largest MAX_BODY_BYTES accepted: NATS caps a message
// at 64 MiB and the gateway keeps 64 KiB of it for headers.
const MaxBodyLimit = 64<<20 - HeaderReserve

// HeaderReserve is the room kept in a NATS message for headers.
const HeaderReserve = 64 << 10

// NewLogger builds the process logger from the Log settings.
func (l Log) NewLogger(w interface{ Write([]byte) (int, error) }) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http(s) URL, got %q", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not carry a query or fragment")
	}
	return nil
}

func subjectToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func streamName(s string) bool { return subjectToken(s) && len(s) <= 255 }
