package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/service"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry"
)

const serveAbout = `Runs the webhook ingress (HTTP_ADDR) and the ops listener (OPS_ADDR).
With no NATS_URL it starts an embedded NATS server with JetStream (DATA_DIR, EMBEDDED_NATS_LISTEN).
All settings come from the environment; see README.md.`

func runServe(ctx context.Context, args []string, env envconfig.Lookuper, stderr io.Writer) error {
	fs := newFlagSet("serve", "", serveAbout, stderr)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(ctx, env)
	if err != nil {
		return fmt.Errorf("invalid settings:\n%w", err)
	}
	log := cfg.Log.NewLogger(stderr)
	log = slog.New(telemetry.LogHandler{Handler: log.Handler()})
	log.Info("starting", "version", versionString())
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceVersion: version})
	if err != nil {
		return fmt.Errorf("invalid OpenTelemetry settings: %w", err)
	}
	if tel.Exporting {
		log.Info("exporting traces over OTLP")
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("telemetry shutdown", "error", err)
		}
	}()
	svc, err := service.New(ctx, cfg, log, service.WithTelemetry(tel))
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
