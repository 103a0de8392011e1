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

// startEmbedded runs an in-process NATS server with JetStream storing under
// DATA_DIR, listening on EMBEDDED_NATS_LISTEN so that consumers, the tail
// command and the nats CLI can attach.
func startEmbedded(n config.NATS, maxMsg int64, log *slog.Logger) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(n.EmbeddedURL)
	if err != nil {
		return nil, fmt.Errorf("EMBEDDED_NATS_LISTEN: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("EMBEDDED_NATS_LISTEN: bad port %q", portStr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "pipedrive-gateway",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   n.DataDir,
		MaxPayload: int32(max(maxMsg, minEmbeddedPayload)),
		NoSigs:     true,
		// The gateway's own client is in-process; the listener is for
		// consumers on this machine.
		NoSystemAccount: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("failed to configure embedded NATS server: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{log: log.With("source", "nats-server")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server did not start on %s (is the port in use? set EMBEDDED_NATS_LISTEN)", n.EmbeddedURL)
	}
	log.Info("embedded NATS server started", "listen", srv.ClientURL(), "store_dir", n.DataDir)
	return srv, nil
}

// natsLogger routes the server's log lines to slog.
type natsLogger struct{ log *slog.Logger }

// Noticef goes to debug: the server's start-up banner is noise in the
// gateway's log, which reports the server's state itself.
func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
