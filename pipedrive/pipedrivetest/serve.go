package pipedrivetest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// httpServer is the server Serve runs.
type httpServer = http.Server

// Handler serves the API and, under /_fake/, the control API (see
// ControlHandler). NewServer's test server serves the API only.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/_fake/", s.ControlHandler())
	mux.Handle("/", s)
	return mux
}

// Serve answers on l until Close; it returns http.ErrServerClosed then. URL
// reports l's address from now on.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      5 * time.Minute, // latency and large pages
		IdleTimeout:       2 * time.Minute,
	}
	s.mu.Lock()
	if s.http != nil {
		s.mu.Unlock()
		return errors.New("pipedrivetest: Serve called twice")
	}
	s.http = hs
	s.url = "http://" + l.Addr().String()
	s.mu.Unlock()
	return hs.Serve(l)
}

// Close stops a fake started with Serve, letting requests in flight finish
// for up to five seconds; for NewServer it closes the test server early.
func (s *Server) Close() error {
	if s.srv != nil {
		s.srv.Close()
		return nil
	}
	s.mu.Lock()
	hs := s.http
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		return hs.Close()
	}
	return nil
}
