// Package natstest runs real NATS servers with JetStream inside tests: one
// server, or a cluster whose nodes a test can kill and restart. It must not
// know the gateway: it gives tests servers, not streams.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an in-process NATS server that a test can stop and restart on
// the same port and store, as an outage would.
type Server struct {
	t    testing.TB
	opts server.Options
	*server.Server
}

// Run starts a JetStream server on a random loopback port with its store in
// a temporary directory; it is shut down when the test ends.
func Run(t testing.TB, configure ...func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoSigs:    true,
		NoLog:     true,
	}}
	for _, f := range configure {
		f(&s.opts)
	}
	s.start()
	// Keep the port it got, so that a restart comes back at the same URL.
	s.opts.Port = s.Addr().(*net.TCPAddr).Port
	return s
}

// Connect opens a client connection to the server, closed when the test
// ends, and its JetStream context.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("failed to create NATS server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("NATS server did not start")
	}
	s.Server = srv
	s.t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
}

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// Restart starts a new server on the same port and store directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.start()
}
