package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// verifier checks the stream after a run: it records the stream's last
// sequence before the run and afterwards reads everything after it with an
// ordered, headers-only consumer, counting messages per meta.id of this run.
type verifier struct {
	nc       *nats.Conn
	stream   jetstream.Stream
	name     string
	startSeq uint64 // last sequence before the run
}

// verifyResult is what the stream holds for this run. Missing and Extra are
// the failures: an event answered 2xx that is not stored, and a second copy
// of an event (or an id this run never sent). An event stored without a 2xx
// (a request that timed out or was cut off) is allowed and only counted.
type verifyResult struct {
	Stream         string `json:"stream"`
	FirstSeq       uint64 `json:"first_seq"`
	LastSeq        uint64 `json:"last_seq"`
	RunMessages    uint64 `json:"run_messages"`
	Distinct       uint64 `json:"distinct"`
	Acked          uint64 `json:"acked"`
	Missing        uint64 `json:"missing"`
	Extra          uint64 `json:"extra"`
	Duplicates     uint64 `json:"duplicates"`
	Unknown        uint64 `json:"unknown_ids"`
	StoredNotAcked uint64 `json:"stored_not_acked"`
	Foreign        uint64 `json:"foreign"`
}

func newVerifier(ctx context.Context, url, name string, purge bool) (*verifier, error) {
	nc, err := nats.Connect(url, nats.Name("loadgen-verify"))
	if err != nil {
		return nil, fmt.Errorf("failed to connect to %s: %w", url, err)
	}
	v := &verifier{nc: nc, name: name}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if v.stream, err = js.Stream(ctx, name); err != nil {
		nc.Close()
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	if purge {
		if err := v.stream.Purge(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("failed to purge stream %s: %w", name, err)
		}
	}
	info, err := v.stream.Info(ctx)
	if err != nil {
		nc.Close()
		return nil, err
	}
	v.startSeq = info.State.LastSeq
	return v, nil
}

func (v *verifier) close() { v.nc.Close() }

// check reads the messages stored since the run began. sent is the number
// of sequence numbers used; acked are those answered 2xx.
func (v *verifier) check(ctx context.Context, prefix string, sent uint64, acked []uint64) (*verifyResult, error) {
	// A request the client gave up on may still be stored a moment later.
	time.Sleep(500 * time.Millisecond)
	info, err := v.stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	r := &verifyResult{Stream: v.name, FirstSeq: v.startSeq + 1, LastSeq: info.State.LastSeq, Acked: uint64(len(acked))}
	counts := make([]uint8, sent)
	if info.State.LastSeq > v.startSeq {
		cons, err := v.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   v.startSeq + 1,
			HeadersOnly:   true,
		})
		if err != nil {
			return nil, fmt.Errorf("failed to create ordered consumer: %w", err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(4096))
		if err != nil {
			return nil, err
		}
		defer it.Stop()
		for {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				return nil, fmt.Errorf("read after sequence %d of %d: %w", v.startSeq, info.State.LastSeq, err)
			}
			id := m.Headers().Get(jetstream.MsgIDHeader)
			seq, ok := uint64(0), false
			if strings.HasPrefix(id, prefix) {
				seq, ok = parseHex12(id[len(prefix):])
				switch {
				case !ok || seq >= sent:
					r.Unknown++
				case counts[seq] < 255:
					counts[seq]++
				}
				r.RunMessages++
			} else {
				r.Foreign++
			}
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			if md.Sequence.Stream >= info.State.LastSeq {
				break
			}
		}
	}
	isAcked := make([]bool, sent)
	for _, s := range acked {
		isAcked[s] = true
		if counts[s] == 0 {
			r.Missing++
		}
	}
	for s, n := range counts {
		if n == 0 {
			continue
		}
		r.Distinct++
		r.Duplicates += uint64(n - 1)
		if !isAcked[s] {
			r.StoredNotAcked++
		}
	}
	r.Extra = r.Duplicates + r.Unknown
	return r, nil
}
