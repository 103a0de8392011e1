// Package serving runs an http.Handler on a listener with the timeouts a
// public endpoint needs and shuts it down gracefully. It must not know the
// routes it serves: they are built in internal/httpapi.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Options are the server's timeouts. Zero values take the defaults below.
type Options struct {
	ReadHeaderTimeout time.Duration // default 5s: slow-header clients are cut off
	ReadTimeout       time.Duration // default 30s
	WriteTimeout      time.Duration // default 30s
	IdleTimeout       time.Duration // default 90s
	MaxHeaderBytes    int           // default 64KiB
	ShutdownGrace     time.Duration // default 15s
}

// Server is an HTTP server bound to its listener.
type Server struct {
	name string
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
	opts Options
}

// Listen binds addr first, so that ":0" works and Addr is the real address
// before any request can arrive.
func Listen(name, addr string, h http.Handler, opts Options, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s for %s: %w", addr, name, err)
	}
	opts = withDefaults(opts)
	return &Server{
		name: name,
		ln:   ln,
		log:  log,
		opts: opts,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: opts.ReadHeaderTimeout,
			ReadTimeout:       opts.ReadTimeout,
			WriteTimeout:      opts.WriteTimeout,
			IdleTimeout:       opts.IdleTimeout,
			MaxHeaderBytes:    opts.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}, nil
}

func withDefaults(o Options) Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, 5*time.Second)
	def(&o.ReadTimeout, 30*time.Second)
	def(&o.WriteTimeout, 30*time.Second)
	def(&o.IdleTimeout, 90*time.Second)
	def(&o.ShutdownGrace, 15*time.Second)
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	return o
}

// Close frees the listener of a server that will not Run.
func (s *Server) Close() error { return s.ln.Close() }

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends, then stops accepting and waits (at most
// ShutdownGrace) for in-flight requests to finish.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("listening", "server", s.name, "addr", s.ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("%s server: %w", s.name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownGrace)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err2 := <-errc; err2 != nil && !errors.Is(err2, http.ErrServerClosed) && err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("%s server shutdown: %w", s.name, err)
	}
	s.log.Info("stopped", "server", s.name)
	return nil
}
