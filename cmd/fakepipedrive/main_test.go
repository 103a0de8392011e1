package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		want    config
		wantErr bool
		isHelp  bool
	}{
		{name: "defaults", want: config{addr: "127.0.0.1:8081", companies: 1, firstID: 1}},
		{name: "all", args: []string{"-addr", ":9", "-companies", "10000", "-first-id", "5", "-latency", "250ms", "-burst", "20", "-tokens-file", "t.csv", "-keep-calls"},
			want: config{addr: ":9", companies: 10000, firstID: 5, latency: 250e6, burst: 20, tokensFile: "t.csv", keepCalls: true}},
		{name: "help", args: []string{"--help"}, wantErr: true, isHelp: true},
		{name: "no_companies", args: []string{"-companies", "0"}, wantErr: true},
		{name: "negative_latency", args: []string{"-latency", "-1s"}, wantErr: true},
		{name: "stray_argument", args: []string{"serve"}, wantErr: true},
		{name: "unknown_flag", args: []string{"-port", "1"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			got, err := parse(tc.args, &stderr)
			if (err != nil) != tc.wantErr || errors.Is(err, flag.ErrHelp) != tc.isHelp {
				t.Fatalf("parse: %v, want error %v (help %v)", err, tc.wantErr, tc.isHelp)
			}
			if tc.isHelp && !strings.Contains(stderr.String(), "/_fake/companies/{id}/objects") {
				t.Errorf("usage lacks the control API:\n%s", stderr.String())
			}
			if !tc.wantErr {
				if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(config{})); diff != "" {
					t.Errorf("config (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	ctx, cancel := context.WithCancel(t.Context())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-companies", "3", "-first-id", "10", "-tokens-file", tokens}, w, io.Discard)
		w.Close()
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		t.Fatalf("no output: %v", <-done)
	}
	first := lines.Text()
	url := strings.Fields(strings.TrimPrefix(first, "fakepipedrive: listening on "))[0]
	go func() { // drain the rest
		for lines.Scan() {
		}
	}()

	c := pipedrive.New(pipedrive.Options{APIURL: url})
	me, err := c.Me(t.Context(), "", pipedrive.Credentials{APIToken: "token-12"})
	if err != nil || me.CompanyID != 12 {
		t.Errorf("Me = %+v, %v; want company 12", me, err)
	}
	b, err := os.ReadFile(tokens)
	if err != nil {
		t.Fatal(err)
	}
	want := "10,company10,token-10\n11,company11,token-11\n12,company12,token-12\n"
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("tokens file (-want +got):\n%s", diff)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v, want nil after cancel", err)
	}
}
