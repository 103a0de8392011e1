package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/service"
)

func runServe(ctx context.Context, args []string, env envconfig.Lookuper, stderr io.Writer) error {
	fs := newFlagSet("serve", "", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(ctx, env)
	if err != nil {
		return fmt.Errorf("invalid settings:\n%w", err)
	}
	log := cfg.Log.NewLogger(stderr)
	log.Info("starting", "version", versionString())
	svc, err := service.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
