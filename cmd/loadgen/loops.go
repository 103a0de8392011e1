package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The two ways of sending: closed loop (fixed concurrency) and open loop
// (fixed arrival rate), and the worker that sends one request.

type worker struct {
	s     *state
	okSeq []uint64
}

func (s *state) newWorker() *worker {
	return &worker{s: s, okSeq: make([]uint64, 0, 1024)}
}

func (s *state) done(w *worker) {
	s.mu.Lock()
	s.okSeq = append(s.okSeq, w.okSeq)
	s.mu.Unlock()
}

// send makes one request with the next sequence number; latency counts
// from sched (the scheduled time in open loop, the send time in closed loop).
func (w *worker) send(ctx context.Context, sched time.Time) {
	s := w.s
	at := sched.Sub(s.start)
	seq := s.seq.Add(1) - 1
	t := &s.tpls[s.mix[seq%uint64(len(s.mix))]]
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 4096)
		bp = &b
	}
	*bp = t.render(*bp, seq)
	s.bytesN.Add(uint64(len(*bp)))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(*bp))
	if err != nil {
		s.fail(err)
		return
	}
	req.Header = s.header // read-only, shared
	resp, err := s.client.Do(req)
	if err != nil {
		s.hist.record(time.Since(sched), at)
		s.fail(err)
		return // the transport may still hold the buffer: do not reuse it
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.hist.record(time.Since(sched), at)
	switch {
	case err != nil:
		s.fail(err)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		s.ok.Add(1)
		w.okSeq = append(w.okSeq, seq)
		// The receiver read the whole body before answering 2xx, so the
		// transport is done with the buffer.
		s.bufs.Put(bp)
	default:
		s.non2xx.Add(1)
		s.firstErr.Do(func() { s.firstErrMsg = "HTTP " + resp.Status })
	}
}

func (s *state) fail(err error) {
	s.errs.Add(1)
	s.firstErr.Do(func() { s.firstErrMsg = err.Error() })
}

// closedLoop runs c.concurrency workers that each send back to back until
// the duration is over.
func (s *state) closedLoop(ctx context.Context, start time.Time) {
	deadline := start.Add(s.c.duration)
	var wg sync.WaitGroup
	for range s.c.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := s.newWorker()
			defer s.done(w)
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(deadline) {
					return
				}
				w.send(ctx, now)
			}
		}()
	}
	wg.Wait()
}

// openLoop sends request i at start + i/rate whatever happened to earlier
// ones. Up to maxOutstanding requests are in flight (one worker each); an
// arrival that finds them all busy is dropped and counted, so overload is
// bounded and visible. Returns the number dropped.
func (s *state) openLoop(ctx context.Context, start time.Time) uint64 {
	total := int64(s.c.rate * s.c.duration.Seconds())
	interval := time.Duration(float64(time.Second) / s.c.rate)
	arrivals := make(chan time.Time, s.c.maxOutstanding)
	var wg sync.WaitGroup
	var busy atomic.Int64
	workers := 0
	spawn := func() {
		workers++
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := s.newWorker()
			defer s.done(w)
			for sched := range arrivals {
				w.send(ctx, sched)
				busy.Add(-1)
			}
		}()
	}
	var dropped uint64
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := int64(0); i < total && ctx.Err() == nil; {
		now := time.Now()
		// Send every arrival that is due; a late scheduler catches up in a
		// burst and the lateness counts as latency.
		for ; i < total; i++ {
			sched := start.Add(time.Duration(i) * interval)
			if sched.After(now) {
				break
			}
			n := busy.Add(1)
			if n > int64(s.c.maxOutstanding) {
				busy.Add(-1)
				dropped++
				continue
			}
			if int(n) > workers {
				spawn()
			}
			arrivals <- sched
		}
		if i < total {
			timer.Reset(time.Until(start.Add(time.Duration(i) * interval)))
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
	}
	close(arrivals)
	wg.Wait()
	return dropped
}
