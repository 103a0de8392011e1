//go:build !linux

package faults

import "testing"

func smallDisk(t *testing.T, _ int64) string {
	t.Skip("skipping: a small disk for DATA_DIR is made with a Linux tmpfs mount")
	return ""
}

func diskFreeBytes(t *testing.T, _ string) int64 { return 0 }
