package config_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
)

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(context.Background(), envconfig.MapLookuper(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"HTTP_ADDR": c.HTTP.Addr, "OPS_ADDR": c.HTTP.OpsAddr, "EMBEDDED_NATS_LISTEN": c.NATS.EmbeddedURL,
		"DATA_DIR": c.NATS.DataDir, "SUBJECT_PREFIX": c.Stream.SubjectPrefix, "STREAM_NAME": c.Stream.Name,
		"STREAM_MAX_AGE": c.Stream.MaxAge, "STREAM_REPLICAS": c.Stream.Replicas,
		"DEDUPE_WINDOW": c.Stream.DedupeWindow, "PUBLISH_TIMEOUT": c.Stream.PublishTimeout,
		"MAX_BODY_BYTES": int64(c.HTTP.MaxBodyBytes), "PIPEDRIVE_OAUTH_URL": c.Pipedrive.OAuthURL,
		"RESYNC_INTERVAL": c.Pipedrive.ResyncInterval, "WEBHOOK_NAME": c.Pipedrive.WebhookName,
		"LOG_LEVEL": c.Log.Level.String(), "LOG_FORMAT": c.Log.Format, "embedded": c.NATS.Embedded(),
		"STREAM_MAX_BYTES": int64(c.Stream.MaxBytes), "STREAM_MANAGE": c.Stream.Manage, "SHUTDOWN_DELAY": c.HTTP.ShutdownDelay,
		"RECONCILE_CONCURRENCY": c.Pipedrive.ReconcileConcurrency, "OAUTH_INSTALL": c.Pipedrive.OAuthInstall,
		"BACKFILL": bool(c.Backfill.Enabled), "BACKFILL_MAX_TOKENS": c.Backfill.MaxTokens,
	}
	want := map[string]any{
		"HTTP_ADDR": ":8080", "OPS_ADDR": ":9090", "EMBEDDED_NATS_LISTEN": "127.0.0.1:4222",
		"DATA_DIR": "./data", "SUBJECT_PREFIX": "pipedrive", "STREAM_NAME": "PIPEDRIVE",
		"STREAM_MAX_AGE": 168 * time.Hour, "STREAM_REPLICAS": 1, "DEDUPE_WINDOW": 10 * time.Minute,
		"PUBLISH_TIMEOUT": 5 * time.Second, "MAX_BODY_BYTES": int64(512 << 10),
		"PIPEDRIVE_OAUTH_URL": "https://oauth.pipedrive.com", "RESYNC_INTERVAL": time.Hour,
		"WEBHOOK_NAME": "pipedrive-gateway", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json", "embedded": true,
		"STREAM_MAX_BYTES": int64(0), "STREAM_MANAGE": "update", "SHUTDOWN_DELAY": time.Duration(0),
		"RECONCILE_CONCURRENCY": 32, "OAUTH_INSTALL": "ticket", "BACKFILL": true, "BACKFILL_MAX_TOKENS": 5000,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	c, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"NATS_URL": "nats://nats:4222", "STATE_KEY": key, "MAX_BODY_BYTES": "1MiB",
		"PIPEDRIVE_API_TOKENS": "a,b", "STREAM_REPLICAS": "3", "LOG_LEVEL": "debug", "LOG_FORMAT": "text",
		"PUBLIC_URL": "https://hooks.example.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.Embedded() || len(c.Admin.StateKey) == 0 || int64(c.HTTP.MaxBodyBytes) != 1<<20 ||
		len(c.Pipedrive.APITokens) != 2 || c.Stream.Replicas != 3 {
		t.Errorf("unexpected config %+v", c)
	}
}

// TestValidate checks that every problem is reported at once and that each
// is named by its variable.
func TestValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want []string // variables that must be named
	}{
		{name: "bad_duration", env: map[string]string{"STREAM_MAX_AGE": "a week"}, want: []string{"STREAM_MAX_AGE"}},
		{name: "all_problems_at_once", env: map[string]string{
			"PUBLISH_TIMEOUT": "soon", "STREAM_REPLICAS": "nine", "MAX_BODY_BYTES": "big", "LOG_LEVEL": "loud",
			"LOG_FORMAT": "xml", "HTTP_ADDR": "8080", "SUBJECT_PREFIX": "a.b", "STREAM_NAME": "x y",
		}, want: []string{"PUBLISH_TIMEOUT", "STREAM_REPLICAS", "MAX_BODY_BYTES", "LOG_LEVEL", "LOG_FORMAT", "HTTP_ADDR", "SUBJECT_PREFIX", "STREAM_NAME"}},
		{name: "external_nats_needs_state_key", env: map[string]string{"NATS_URL": "nats://x:4222"}, want: []string{"STATE_KEY"}},
		{name: "short_state_key", env: map[string]string{"STATE_KEY": base64.StdEncoding.EncodeToString([]byte("short"))}, want: []string{"STATE_KEY"}},
		{name: "state_key_not_base64", env: map[string]string{"STATE_KEY": "%%%"}, want: []string{"STATE_KEY"}},
		{name: "publish_timeout_over_pipedrive_limit", env: map[string]string{"PUBLISH_TIMEOUT": "12s"}, want: []string{"PUBLISH_TIMEOUT"}},
		{name: "zero_durations", env: map[string]string{"DEDUPE_WINDOW": "0s", "RESYNC_INTERVAL": "-1h"}, want: []string{"DEDUPE_WINDOW", "RESYNC_INTERVAL"}},
		{name: "dedupe_longer_than_retention", env: map[string]string{"DEDUPE_WINDOW": "200h"}, want: []string{"DEDUPE_WINDOW"}},
		{name: "replicas_out_of_range", env: map[string]string{"STREAM_REPLICAS": "0"}, want: []string{"STREAM_REPLICAS"}},
		{name: "body_limit_too_big", env: map[string]string{"MAX_BODY_BYTES": "100MiB"}, want: []string{"MAX_BODY_BYTES"}},
		{name: "webhook_user_without_password", env: map[string]string{"WEBHOOK_USER": "u"}, want: []string{"WEBHOOK_USER"}},
		{name: "oauth_half_configured", env: map[string]string{"PIPEDRIVE_CLIENT_ID": "id"}, want: []string{"PIPEDRIVE_CLIENT_ID"}},
		{name: "bad_urls", env: map[string]string{"PUBLIC_URL": "hooks.example.com", "PIPEDRIVE_API_URL": "ftp://x", "PIPEDRIVE_OAUTH_URL": "https://x/?a=1"}, want: []string{"PUBLIC_URL", "PIPEDRIVE_API_URL", "PIPEDRIVE_OAUTH_URL"}},
		{name: "empty_token_entry", env: map[string]string{"PIPEDRIVE_API_TOKENS": "a,,b"}, want: []string{"PIPEDRIVE_API_TOKENS"}},
		{name: "tls_cert_without_key", env: map[string]string{"NATS_TLS_CERT": "/c.pem"}, want: []string{"NATS_TLS_CERT"}},
		{name: "new_settings_all_bad", env: map[string]string{
			"STREAM_MAX_BYTES": "lots", "STREAM_MANAGE": "sometimes", "SHUTDOWN_DELAY": "1h",
			"RECONCILE_CONCURRENCY": "0", "OAUTH_INSTALL": "closed", "BACKFILL": "maybe", "BACKFILL_MAX_TOKENS": "-5",
		}, want: []string{"STREAM_MAX_BYTES", "STREAM_MANAGE", "SHUTDOWN_DELAY", "RECONCILE_CONCURRENCY", "OAUTH_INSTALL", "BACKFILL", "BACKFILL_MAX_TOKENS"}},
		{name: "stream_max_bytes_too_small", env: map[string]string{"STREAM_MAX_BYTES": "1KiB"}, want: []string{"STREAM_MAX_BYTES"}},
		{name: "previous_key_bad", env: map[string]string{"STATE_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)), "STATE_KEY_PREVIOUS": "%%%"}, want: []string{"STATE_KEY_PREVIOUS"}},
		{name: "previous_key_without_current", env: map[string]string{"STATE_KEY_PREVIOUS": base64.StdEncoding.EncodeToString(make([]byte, 32))}, want: []string{"STATE_KEY_PREVIOUS"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(context.Background(), envconfig.MapLookuper(tc.env))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, name := range tc.want {
				if !strings.Contains(err.Error(), name+":") {
					t.Errorf("error does not name %s:\n%v", name, err)
				}
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines != len(tc.want) {
				t.Errorf("error has %d lines, want one per problem (%d):\n%v", lines, len(tc.want), err)
			}
		})
	}
}

// TestValidateOrder checks that the same problems are always listed in the
// same order.
func TestValidateOrder(t *testing.T) {
	t.Parallel()
	env := envconfig.MapLookuper(map[string]string{
		"HTTP_ADDR": "x", "OPS_ADDR": "y", "PUBLISH_TIMEOUT": "soon", "STREAM_REPLICAS": "nine", "LOG_LEVEL": "loud",
	})
	_, first := config.Load(context.Background(), env)
	for range 20 {
		if _, err := config.Load(context.Background(), env); err == nil || err.Error() != first.Error() {
			t.Fatalf("order changed:\n%v\nthen\n%v", first, err)
		}
	}
}

func TestSecretsNotPrinted(t *testing.T) {
	t.Parallel()
	_, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{"STATE_KEY": "not-base64-secret!"}))
	if err == nil || strings.Contains(err.Error(), "not-base64-secret") {
		t.Errorf("error %v must reject the key without printing it", err)
	}
}
