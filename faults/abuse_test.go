package faults

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// procMemKB reads VmRSS and VmHWM (peak RSS) of pid in KiB.
func procMemKB(t *testing.T, pid int) (rss, hwm int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm
}

// metricValue returns a sample of the gateway's /metrics, or -1.
func metricValue(ops, name string) float64 {
	resp, err := http.Get(ops + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// raiseFDLimit lifts the soft NOFILE limit to the hard one and returns it.
func raiseFDLimit(t *testing.T) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("cannot raise the fd limit: %v", err)
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
	}
	return lim.Cur
}

// TestIngressAbuse throws slowloris clients, oversized and garbage bodies
// and thousands of idle connections at the gateway binary; it must not
// crash, its memory must stay bounded, and it must be healthy and accept a
// valid event afterwards.
func TestIngressAbuse(t *testing.T) {
	t.Parallel()
	fdLimit := raiseFDLimit(t) // before the child starts: it inherits it
	env := procEnv(t)
	env["WEBHOOK_USER"], env["WEBHOOK_PASSWORD"] = "pipedrive", "change-me"
	p := startProc(t, env)
	pid := p.cmd.Process.Pid
	host := env["HTTP_ADDR"]
	url := p.ingress() + "/webhooks/pipedrive/9912345"
	rss0, _ := procMemKB(t, pid)
	heap0 := metricValue(p.ops(), "go_memstats_heap_inuse_bytes")

	// 1. Slowloris: headers one byte every 300 ms; ReadHeaderTimeout (5 s)
	// must cut each one off.
	const slowClients = 50
	var slowMu sync.Mutex
	var slowCut []time.Duration
	var slowWG sync.WaitGroup
	for range slowClients {
		slowWG.Add(1)
		go func() {
			defer slowWG.Done()
			c, err := net.Dial("tcp", host)
			if err != nil {
				return
			}
			defer c.Close()
			start := time.Now()
			closed := make(chan struct{})
			go func() {
				io.Copy(io.Discard, c) // returns when the server hangs up
				close(closed)
			}()
			msg := "POST /webhooks/pipedrive/9912345 HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 200)
			for i := 0; i < len(msg); i++ {
				if _, err := c.Write([]byte{msg[i]}); err != nil {
					break
				}
				select {
				case <-closed:
				case <-time.After(300 * time.Millisecond):
					continue
				}
				break
			}
			select {
			case <-closed:
			case <-time.After(20 * time.Second):
			}
			slowMu.Lock()
			slowCut = append(slowCut, time.Since(start))
			slowMu.Unlock()
		}()
	}

	// 2. Oversized bodies: declared, chunked, and declared without auth.
	big := bytes.Repeat([]byte("x"), 8<<20)
	type bodyCase struct {
		name    string
		auth    bool
		chunked bool
		body    []byte
		want    int
	}
	cases := []bodyCase{
		{"oversized_content_length", true, false, big, 413},
		{"oversized_chunked", true, true, big, 413},
		{"oversized_no_auth", false, false, big, 401},
		{"just_over_limit_chunked", true, true, bytes.Repeat([]byte("y"), 512<<10+1), 413},
		{"not_json", true, false, []byte("\x00\x01\x02garbage\xff"), 400},
		{"deep_nesting", true, false, []byte(strings.Repeat("[", 400<<10)), 400},
		{"meta_wrong_types", true, false, []byte(`{"meta":{"action":5,"entity":["deal"],"company_id":{},"version":true}}`), 400},
		{"two_objects", true, false, []byte(`{"meta":{}} {"meta":{}}`), 400},
		{"subject_injection", true, false, []byte(`{"meta":{"action":"change","entity":"deal.>","company_id":"9912345","id":"x","version":"2.0"}}`), 400},
		{"empty", true, false, nil, 400},
	}
	var bodyMu sync.Mutex
	bodyBad := map[string]string{}
	bodySeen := map[string]int{}
	client := &http.Client{Timeout: 30 * time.Second}
	var bodyWG sync.WaitGroup
	sem := make(chan struct{}, 8)
	for round := range pick(5, 50) {
		for _, bc := range cases {
			bodyWG.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; bodyWG.Done() }()
				var r io.Reader = bytes.NewReader(bc.body)
				if bc.chunked {
					r = io.MultiReader(r) // hides the length: chunked encoding
				}
				req, _ := http.NewRequest(http.MethodPost, url, r)
				if bc.auth {
					req.SetBasicAuth("pipedrive", "change-me")
				}
				resp, err := client.Do(req)
				got := "transport error"
				if err == nil {
					io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
					resp.Body.Close()
					got = strconv.Itoa(resp.StatusCode)
				}
				bodyMu.Lock()
				bodySeen[bc.name]++
				if got != strconv.Itoa(bc.want) {
					bodyBad[fmt.Sprintf("%s#%d", bc.name, round)] = got + " (err " + fmt.Sprint(err) + ")"
				}
				bodyMu.Unlock()
			}()
		}
	}
	bodyWG.Wait()

	// 3. Idle connections, as many as the fd limit leaves room for (the
	// child has the same limit and also needs its own fds).
	idle := int(min(uint64(pick(3000, 8000)), fdLimit/2-300))
	var conns []net.Conn
	for range idle {
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Logf("stopped opening idle connections after %d: %v", len(conns), err)
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second)
	rssIdle, _ := procMemKB(t, pid)
	// The gateway still serves while they are open.
	okWhileIdle := deliver(t, p.ingress(), 9912345, "pipedrive", "change-me", "abuse-during-idle")
	healthyWhileIdle := servicetest.Status(p.ops()+"/healthz") == 200 && servicetest.Status(p.ops()+"/readyz") == 200
	// Idle connections that never send a request are closed by the header
	// timeout; count how many the server dropped within 10 s.
	dropped := 0
	var dropWG sync.WaitGroup
	var dropMu sync.Mutex
	for _, c := range conns {
		dropWG.Add(1)
		go func() {
			defer dropWG.Done()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil && !os.IsTimeout(err) {
				dropMu.Lock()
				dropped++
				dropMu.Unlock()
			}
		}()
	}
	dropWG.Wait()
	for _, c := range conns {
		c.Close()
	}
	slowWG.Wait()

	// 4. Afterwards: alive, healthy, and a valid event is accepted.
	select {
	case <-p.done:
		t.Fatalf("gateway exited: %v\n%s", p.err, p.log.String())
	default:
	}
	rss1, hwm := procMemKB(t, pid)
	heap1 := metricValue(p.ops(), "go_memstats_heap_inuse_bytes")
	healthz, readyz := servicetest.Status(p.ops()+"/healthz"), servicetest.Status(p.ops()+"/readyz")
	after := deliver(t, p.ingress(), 9912345, "pipedrive", "change-me", "abuse-after")
	stored := servicetest.StreamIDs(t, p.nats(), "PIPEDRIVE")

	var slowMax time.Duration
	for _, d := range slowCut {
		slowMax = max(slowMax, d)
	}
	t.Logf("slowloris=%d cut_off=%d slowest_cut=%v bodies=%v wrong_answers=%d idle_conns=%d (fd limit %d) idle_dropped_by_server_in_10s=%d rss_kib start=%d with_idle=%d end=%d peak=%d heap_inuse start=%.0f end=%.0f healthz=%d readyz=%d valid_event_during_idle=%d after=%d stored=%d",
		slowClients, len(slowCut), slowMax.Round(time.Millisecond), bodySeen, len(bodyBad), len(conns), fdLimit, dropped,
		rss0, rssIdle, rss1, hwm, heap0, heap1, healthz, readyz, okWhileIdle, after, len(stored))
	for k, v := range bodyBad {
		t.Errorf("%s: answered %s", k, v)
	}
	if len(slowCut) != slowClients || slowMax > 8*time.Second {
		t.Errorf("%d of %d slowloris clients cut off, slowest after %v, want all within ReadHeaderTimeout (5s) + 3s", len(slowCut), slowClients, slowMax)
	}
	if okWhileIdle != 200 || !healthyWhileIdle {
		t.Errorf("with %d idle connections open: event %d, healthy %v", len(conns), okWhileIdle, healthyWhileIdle)
	}
	if healthz != 200 || readyz != 200 || after != 200 {
		t.Errorf("afterwards: healthz %d, readyz %d, valid event %d; want 200s", healthz, readyz, after)
	}
	if stored["abuse-after"] != 1 || len(stored) != 2 {
		t.Errorf("stream holds %d messages (%v), want exactly the 2 valid events", len(stored), stored)
	}
	// Bounded: the peak stays under 512 MiB whatever was thrown at it.
	if hwm > 512<<10 {
		t.Errorf("peak RSS %d KiB, want under 512 MiB", hwm)
	}
}
