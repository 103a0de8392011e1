package faults

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// banRiskMetric is what the chart's ban-risk alert sums:
// sum by (company_id) (increase(pipedrive_gateway_first_attempt_failures_total[30m])).
const banRiskMetric = "pipedrive_gateway_first_attempt_failures_total"

// firstAttemptFailures scrapes ops/metrics and returns the counter by company_id.
func firstAttemptFailures(t *testing.T, ops string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	company := regexp.MustCompile(`company_id="([^"]*)"`)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, banRiskMetric+"{") {
			continue
		}
		m := company.FindStringSubmatch(line)
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if m == nil || err != nil {
			t.Fatalf("cannot read %q", line)
		}
		out[m[1]] += v
	}
	return out
}

// failFirstAttempts sends n first deliveries for company that the gateway
// refuses (an action it cannot route: 400), each of which Pipedrive counts
// towards a ban.
func failFirstAttempts(t *testing.T, ingress string, company int64, n int) {
	t.Helper()
	for i := range n {
		body := bytes.Replace(eventBody(company, fmt.Sprintf("fail-%d-%d", company, i)), []byte(`"action":"change"`), []byte(`"action":"renamed"`), 1)
		status, err := servicetest.Post(fmt.Sprintf("%s/webhooks/pipedrive/%d", ingress, company), "pipedrive", "change-me", body)
		if err != nil || status != http.StatusBadRequest {
			t.Fatalf("failing delivery for company %d: %d %v, want 400", company, status, err)
		}
	}
}

// TestBanRiskAcrossReplicas: two replicas behind one NATS both refuse first
// deliveries of the same companies. The chart's alert expression, evaluated
// over both replicas' /metrics (increase = difference of two scrapes), reaches
// the true number of failures of each company, which one replica alone (the
// old max by company_id) does not.
func TestBanRiskAcrossReplicas(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	key := servicetest.StateKey()
	var replicas []*servicetest.Running
	for range 2 {
		env := servicetest.Env(t)
		env["NATS_URL"] = ns.ClientURL()
		env["STATE_KEY"] = key
		r := servicetest.Start(t, env, slog.LevelError)
		servicetest.WaitStatus(t, r.OpsURL()+"/readyz", http.StatusOK, 15*time.Second)
		replicas = append(replicas, r)
	}
	const acme, other = 9912345, 777
	// One failure each first, so that every series exists at the first scrape
	// (increase() sees nothing of a series before its first sample).
	for _, r := range replicas {
		failFirstAttempts(t, r.IngressURL(), acme, 1)
		failFirstAttempts(t, r.IngressURL(), other, 1)
	}
	before := []map[string]float64{firstAttemptFailures(t, replicas[0].OpsURL()), firstAttemptFailures(t, replicas[1].OpsURL())}

	sent := map[string][2]int{"9912345": {4, 3}, "777": {1, 2}} // per replica
	for company, n := range sent {
		id, _ := strconv.ParseInt(company, 10, 64)
		failFirstAttempts(t, replicas[0].IngressURL(), id, n[0])
		failFirstAttempts(t, replicas[1].IngressURL(), id, n[1])
	}
	after := []map[string]float64{firstAttemptFailures(t, replicas[0].OpsURL()), firstAttemptFailures(t, replicas[1].OpsURL())}

	for company, n := range sent {
		var sum, most float64
		for i := range replicas {
			inc := after[i][company] - before[i][company]
			sum += inc
			most = max(most, inc)
		}
		want := float64(n[0] + n[1])
		t.Logf("company %s: sum by (company_id) (increase) = %v, max by (company_id) = %v, true total %v", company, sum, most, want)
		if sum != want {
			t.Errorf("company %s: the alert expression gives %v failures, want the true total %v (replicas: before %v, after %v)", company, sum, want, before, after)
		}
	}
}
