package faults

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// TestNATSNodeLoss runs the gateway against a 3-node cluster with an R3
// stream and kills one node under load: first the stream leader, then a
// follower. No acknowledged event may be missing, and most requests must
// still succeed while the cluster fails over.
func TestNATSNodeLoss(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	env := servicetest.Env(t)
	env["NATS_URL"] = c.URLs()
	env["STATE_KEY"] = servicetest.StateKey()
	env["STREAM_REPLICAS"] = "3"
	env["PUBLISH_TIMEOUT"] = "2s"
	s := servicetest.Start(t, env, slog.LevelError)
	servicetest.WaitStatus(t, s.OpsURL()+"/readyz", 200, 30*time.Second)
	c.WaitStreamCurrent("PIPEDRIVE", 30*time.Second)

	for _, tc := range []struct {
		name   string
		victim func() int
	}{
		{"leader", func() int { return c.StreamLeader("PIPEDRIVE") }},
		{"follower", func() int { return (c.StreamLeader("PIPEDRIVE") + 1) % 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.WaitStreamCurrent("PIPEDRIVE", 30*time.Second)
			victim := tc.victim()
			if victim < 0 {
				t.Fatal("stream has no leader")
			}
			prefix := "nodeloss-" + tc.name
			l := newLoader(s.IngressURL(), 9912345, "pipedrive", "change-me", prefix).start(8)
			defer l.stop()
			time.Sleep(pick(2*time.Second, 20*time.Second))

			gwNode := gatewayNode(c)
			killed := time.Now()
			c.Kill(victim)
			time.Sleep(pick(5*time.Second, 30*time.Second))
			newLeader := c.StreamLeader("PIPEDRIVE")
			c.Restart(victim)
			c.WaitStreamCurrent("PIPEDRIVE", 60*time.Second)
			time.Sleep(pick(time.Second, 10*time.Second))
			l.stop()

			var failover, failoverOK, fivexx int
			var lastFail time.Time
			for _, r := range l.results() {
				if r.status >= 500 || r.status == 0 {
					fivexx++
					if end := r.start.Add(r.latency); end.After(lastFail) {
						lastFail = end
					}
				}
				if r.start.After(killed) {
					failover++
					if r.status == http.StatusOK {
						failoverOK++
					}
				}
			}
			acked := l.acked()
			stored := servicetest.StreamIDs(t, c.URLs(), "PIPEDRIVE")
			missing := lost(acked, stored)
			var unavailable time.Duration
			if !lastFail.IsZero() {
				unavailable = lastFail.Sub(killed)
			}
			t.Logf("sent=%d acked=%d stored=%d lost=%d statuses=%s killed=n%d gateway_connected_to=n%d new_leader=n%d 5xx=%d after_kill=%d after_kill_ok=%d last_5xx_after_kill=%v",
				l.sent.Load(), len(acked), storedWithPrefix(stored, prefix), missing, l.statuses(), victim, gwNode, newLeader,
				fivexx, failover, failoverOK, unavailable.Round(time.Millisecond))
			if missing > 0 {
				t.Errorf("%d acknowledged events are missing from the stream", missing)
			}
			if failover == 0 || failoverOK*10 < failover*8 {
				t.Errorf("%d of %d requests after the kill succeeded, want at least 80%%", failoverOK, failover)
			}
		})
	}
}

// gatewayNode is the node the gateway's NATS connection is on, or -1.
func gatewayNode(c *natstest.Cluster) int {
	for i, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		cz, err := n.Connz(&server.ConnzOptions{})
		if err != nil {
			continue
		}
		for _, ci := range cz.Conns {
			if ci.Name == "pipedrive-gateway" {
				return i
			}
		}
	}
	return -1
}
