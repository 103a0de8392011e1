//go:build !linux && !darwin

package relay

// diskFree cannot be told on this platform: the relay restarts JetStream
// after a write error without waiting for space.
func diskFree(string) int64 { return -1 }

func diskSize(string) int64 { return -1 }
