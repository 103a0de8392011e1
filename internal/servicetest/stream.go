package servicetest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamIDs reads every message of the stream through url and returns how
// many copies of each Nats-Msg-Id it holds.
func StreamIDs(t testing.TB, url, stream string) map[string]int {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// Each API request gets a few seconds: a cluster that just lost or got
	// back a node can drop one, which must not use up the whole wait.
	var s jetstream.Stream
	var info *jetstream.StreamInfo
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		s, err = js.Stream(actx, stream)
		if err == nil {
			info, err = s.Info(actx)
		}
		acancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ids := map[string]int{}
	if info.State.Msgs == 0 {
		return ids
	}
	// Read in batches; when a cluster is still settling (a node just came
	// back) a fetch can fail, so the reader starts again after the last
	// sequence it got, a bounded number of times.
	var next uint64 = 1
	var cons jetstream.Consumer
	retries := 0
	for read := uint64(0); read < info.State.Msgs; {
		if cons == nil {
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			cons, err = s.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
				DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: next,
			})
			ccancel()
			if err != nil {
				cons = nil
				if retries++; retries > 20 || ctx.Err() != nil {
					t.Fatalf("consumer from sequence %d after %d retries: %v", next, retries, err)
				}
				time.Sleep(500 * time.Millisecond)
				continue
			}
		}
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		n := 0
		if err == nil {
			for m := range batch.Messages() {
				ids[m.Headers().Get("Nats-Msg-Id")]++
				if md, err := m.Metadata(); err == nil {
					next = md.Sequence.Stream + 1
				}
				n++
			}
			err = batch.Error()
		}
		read += uint64(n)
		if n == 0 && err != nil {
			if retries++; retries > 20 || ctx.Err() != nil {
				t.Fatalf("fetch after %d of %d messages: %v", read, info.State.Msgs, err)
			}
			t.Logf("fetch after %d of %d messages: %v; reading on from sequence %d", read, info.State.Msgs, err, next)
			cons = nil
			time.Sleep(500 * time.Millisecond)
		}
		if ctx.Err() != nil {
			t.Fatalf("reading the stream took over 120s (%d of %d)", read, info.State.Msgs)
		}
	}
	return ids
}
