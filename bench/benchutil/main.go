// Command benchutil is the small glue bench/run.sh needs without depending
// on more than bash and Go:
//
//	benchutil ports N                 print N free loopback TCP ports
//	benchutil wait URL [TIMEOUT]      wait until GET URL answers 200 (default 30s)
//	benchutil summary RESULTS [RSS]   print the Markdown summary of loadgen -json lines
//	benchutil meanbody RESULTS        print the mean request body size of those runs
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: benchutil ports N | wait URL [TIMEOUT] | summary RESULTS [RSS] | meanbody RESULTS")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ports":
		err = ports(os.Args[2])
	case "wait":
		timeout := 30 * time.Second
		if len(os.Args) > 3 {
			if timeout, err = time.ParseDuration(os.Args[3]); err != nil {
				break
			}
		}
		err = wait(os.Args[2], timeout)
	case "meanbody":
		err = meanBody(os.Stdout, os.Args[2])
	case "summary":
		rss := ""
		if len(os.Args) > 3 {
			rss = os.Args[3]
		}
		err = summary(os.Stdout, os.Args[2], rss)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchutil:", err)
		os.Exit(1)
	}
}

// ports binds N listeners on 127.0.0.1:0 at once (so the ports differ),
// prints their ports and closes them.
func ports(arg string) error {
	var n int
	if _, err := fmt.Sscan(arg, &n); err != nil || n < 1 || n > 100 {
		return fmt.Errorf("bad count %q", arg)
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

func wait(url string, timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %s", url, timeout, last)
}
