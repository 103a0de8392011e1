// Package faults holds the gateway's fault-injection tests: NATS outage,
// NATS node loss, gateway SIGTERM and SIGKILL under load, Pipedrive API
// chaos with two replicas, and ingress abuse. Each test logs one summary
// line and asserts that no acknowledged event is lost.
//
// The short versions run in `go test -race ./...`; `go test ./faults -long`
// runs the long ones (a 10-minute chaos soak, longer loads).
package faults
