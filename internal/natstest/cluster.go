package natstest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is an N-node JetStream cluster on loopback, in process. Each node
// keeps its client port, route port and store across Kill and Restart, as a
// node of a real cluster does when its process or machine comes back.
type Cluster struct {
	t     testing.TB
	Nodes []*Server
}

// RunCluster starts n routed JetStream servers named n0…n<n-1> in cluster
// "natstest" and waits until JetStream has a meta leader. The nodes are shut
// down when the test ends.
func RunCluster(t testing.TB, n int, configure ...func(*server.Options)) *Cluster {
	t.Helper()
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = FreePort(t)
	}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &Cluster{t: t}
	for i := range n {
		s := &Server{t: t, opts: server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       FreePort(t),
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "natstest",
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}}
		for _, f := range configure {
			f(&s.opts)
		}
		c.Nodes = append(c.Nodes, s)
	}
	// A clustered server only reports ready once its routes are up, so the
	// nodes start side by side.
	errc := make(chan error, n)
	for _, s := range c.Nodes {
		go func() {
			srv, err := server.NewServer(&s.opts)
			if err == nil {
				go srv.Start()
				if !srv.ReadyForConnections(30 * time.Second) {
					err = fmt.Errorf("node %s did not start", s.opts.ServerName)
				}
			}
			s.Server = srv
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatalf("failed to start NATS cluster: %v", err)
		}
	}
	for _, s := range c.Nodes {
		srv := s.Server
		t.Cleanup(func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		})
	}
	c.WaitJetStream(30 * time.Second)
	return c
}

// FreePort returns a loopback port that was free a moment ago, taken below
// the kernel's ephemeral range (32768 and up on Linux) so that client
// connections opened meanwhile cannot grab it before a server binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no free port found in 20000-31999")
	return 0
}

// URLs is the comma-separated client URLs of every node, as NATS_URL takes them.
func (c *Cluster) URLs() string {
	var urls []string
	for _, s := range c.Nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port))
	}
	return strings.Join(urls, ",")
}

// Kill shuts node i down, closing its client and route connections.
func (c *Cluster) Kill(i int) { c.Nodes[i].Stop() }

// Restart starts node i again on its ports and store.
func (c *Cluster) Restart(i int) { c.Nodes[i].Restart() }

// Running reports whether node i is up.
func (c *Cluster) Running(i int) bool { return c.Nodes[i].Server.Running() }

// Index returns the node with the given server name, or -1.
func (c *Cluster) Index(name string) int {
	for i, s := range c.Nodes {
		if s.opts.ServerName == name {
			return i
		}
	}
	return -1
}

// StreamLeader returns the index of the node leading stream in the global
// account, or -1 while there is none.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.Nodes {
		if s.Server.Running() && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// WaitJetStream waits until JetStream answers through a running node, that
// is until the meta group has a leader.
func (c *Cluster) WaitJetStream(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		last = c.jsReady()
		if last == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("JetStream cluster not ready after %v: %v", timeout, last)
}

func (c *Cluster) jsReady() error {
	for i, s := range c.Nodes {
		if !s.Server.Running() {
			continue
		}
		nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port), nats.Timeout(time.Second))
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := js.AccountInfo(ctx); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		return nil
	}
	return fmt.Errorf("no node is running")
}

// WaitStreamCurrent waits until stream has a leader and every replica on a
// running node has caught up with it.
func (c *Cluster) WaitStreamCurrent(stream string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		leader := c.StreamLeader(stream)
		if leader >= 0 {
			ok := true
			for _, s := range c.Nodes {
				if !s.Server.Running() {
					ok = false
					break
				}
				if !s.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
					ok = false
					break
				}
			}
			if ok {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("stream %s not current on every node after %v", stream, timeout)
}
