//go:build linux || darwin

package relay

import "syscall"

// diskFree is the space left to unprivileged writers on the filesystem of
// dir, -1 when it cannot be told.
func diskFree(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize))
}

// diskSize is the size of the filesystem of dir, -1 when it cannot be told.
func diskSize(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(uint64(st.Blocks) * uint64(st.Bsize))
}
