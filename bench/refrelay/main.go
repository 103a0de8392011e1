// Command refrelay is the reference for the gateway's benchmark: the relay a
// user would write by hand instead of adopting pipedrive-gateway. It does
// the minimum the job needs and nothing else: net/http, Basic auth compared
// in constant time, the body read whole (512 KiB limit), meta.id, meta.action
// and meta.entity decoded with encoding/json, one synchronous JetStream
// publish with the event id as Nats-Msg-Id, 200 after the ack, 503 on error.
//
//	refrelay -addr 127.0.0.1:8081 -nats nats://127.0.0.1:4222 -user pipedrive -password change-me
//
// Settings may also come from REF_ADDR, NATS_URL, WEBHOOK_USER and
// WEBHOOK_PASSWORD. It declares its own stream (REF, subjects ref.>, file
// storage, 10m duplicate window) at start.
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// webhook is the part of the body the relay needs.
type webhook struct {
	Meta struct {
		ID     string `json:"id"`
		Action string `json:"action"`
		Entity string `json:"entity"`
	} `json:"meta"`
}

func main() {
	addr := flag.String("addr", env("REF_ADDR", "127.0.0.1:8081"), "listen address")
	natsURL := flag.String("nats", env("NATS_URL", nats.DefaultURL), "NATS URL")
	user := flag.String("user", env("WEBHOOK_USER", "pipedrive"), "Basic auth user")
	password := flag.String("password", env("WEBHOOK_PASSWORD", "change-me"), "Basic auth password")
	streamName := flag.String("stream", "REF", "stream name (subjects ref.>)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	nc, err := nats.Connect(*natsURL, nats.Name("refrelay"), nats.MaxReconnects(-1))
	if err != nil {
		log.Fatalf("failed to connect to NATS: %v", err)
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = js.CreateOrUpdateStream(sctx, jetstream.StreamConfig{
		Name:       *streamName,
		Subjects:   []string{"ref.>"},
		Storage:    jetstream.FileStorage,
		Duplicates: 10 * time.Minute,
	})
	cancel()
	if err != nil {
		log.Fatalf("failed to create stream: %v", err)
	}

	wantUser, wantPass := []byte(*user), []byte(*password)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("POST /webhooks/pipedrive/{company}", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), wantUser)&subtle.ConstantTimeCompare([]byte(p), wantPass) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="refrelay"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 512<<10))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "failed to read body", http.StatusBadRequest)
			return
		}
		var wh webhook
		if err := json.Unmarshal(body, &wh); err != nil || wh.Meta.ID == "" || wh.Meta.Action == "" || wh.Meta.Entity == "" {
			http.Error(w, "not a v2 webhook", http.StatusBadRequest)
			return
		}
		pctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		msg := &nats.Msg{Subject: "ref." + wh.Meta.Action + "." + wh.Meta.Entity, Data: body}
		if _, err := js.PublishMsg(pctx, msg, jetstream.WithMsgID(wh.Meta.ID)); err != nil {
			log.Printf("publish failed: %v", err)
			http.Error(w, "event not stored", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})

	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("refrelay listening on %s, stream %s", *addr, *streamName)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
