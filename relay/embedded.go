package relay

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
)

// minEmbeddedPayload is the NATS default max payload; the embedded server
// never goes below it so that consumers see ordinary limits.
const minEmbeddedPayload = 1 << 20

// storeReserve is the room the JetStream store limit keeps beside
// STREAM_MAX_BYTES for everything else under DATA_DIR: the company state,
// the leader lease and the gap records (KV buckets of a few MiB) and the
// stream's index files.
const storeReserve = 64 << 20

// startEmbedded runs an in-process NATS server with JetStream storing under
// DATA_DIR, listening on EMBEDDED_NATS_LISTEN so that consumers, the tail
// command and the nats CLI can attach. It returns the server and the
// JetStream store limit it was given (0: the server's own, see storeLimit).
// onError is called for each error the server logs, so that the relay looks
// at once when the store fails.
func startEmbedded(cfg *config.Config, maxMsg int64, log *slog.Logger, onError func()) (*server.Server, int64, error) {
	n := cfg.NATS
	host, portStr, err := net.SplitHostPort(n.EmbeddedURL)
	if err != nil {
		return nil, 0, fmt.Errorf("EMBEDDED_NATS_LISTEN: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, 0, fmt.Errorf("EMBEDDED_NATS_LISTEN: bad port %q", portStr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	maxStore := storeLimit(cfg.Stream, n.DataDir, log)
	opts := &server.Options{
		ServerName:        "pipedrive-gateway",
		Host:              host,
		Port:              port,
		JetStream:         true,
		StoreDir:          n.DataDir,
		JetStreamMaxStore: maxStore,
		MaxPayload:        int32(max(maxMsg, minEmbeddedPayload)),
		NoSigs:            true,
		// The gateway's own client is in-process; the listener is for
		// consumers on this machine.
		NoSystemAccount: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to configure embedded NATS server: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{log: log.With("source", "nats-server"), onError: onError}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, 0, fmt.Errorf("embedded NATS server did not start on %s (is the port in use? set EMBEDDED_NATS_LISTEN)", n.EmbeddedURL)
	}
	limitAttr := slog.String("store_limit", "75% of the free space at start plus what the streams hold (nats-server default)")
	if jc := srv.JetStreamConfig(); jc != nil {
		limitAttr = slog.Int64("store_limit_bytes", jc.MaxStore)
	}
	log.Info("embedded NATS server started", "listen", srv.ClientURL(), "store_dir", n.DataDir, limitAttr)
	return srv, maxStore, nil
}

// storeLimit is the JetStream store limit of the embedded server, which
// keeps the gateway from filling DATA_DIR's disk: with STREAM_MAX_BYTES set,
// the stream's cap plus storeReserve (the stream itself discards its oldest
// events at the cap, so the store limit is never what stops ingest); without
// it, 0, which leaves nats-server's own limit: 75 % of the space free at
// start plus what its streams already hold (server/disk_avail.go
// diskAvailable, jetstream.go finalizeDynamicMaxStore).
func storeLimit(s config.Stream, dataDir string, log *slog.Logger) int64 {
	if s.MaxBytes <= 0 {
		return 0
	}
	limit := int64(s.MaxBytes) + storeReserve
	if size := diskSize(dataDir); size > 0 && limit > size/10*9 {
		log.Warn("STREAM_MAX_BYTES plus 64MiB for state is more than 90% of the filesystem of DATA_DIR: the disk can fill before the stream reaches its limit",
			"stream_max_bytes", int64(s.MaxBytes), "filesystem_bytes", size, "data_dir", dataDir)
	}
	return limit
}

// natsLogger routes the server's log lines to slog.
type natsLogger struct {
	log     *slog.Logger
	onError func()
}

// Noticef goes to debug: the server's start-up banner is noise in the
// gateway's log, which reports the server's state itself.
func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// Errorf also wakes the relay's monitor: the server logs a store's write
// error ("no space left on device") the moment it happens, while the
// publish that hit it only times out.
func (l *natsLogger) Errorf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...))
	if l.onError != nil {
		l.onError()
	}
}
