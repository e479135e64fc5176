package domain

import (
	"crypto/rand"
	"encoding/hex"
)

// NewID returns a random (version 4) UUID, for event and message ids.
func NewID() string {
	var b [16]byte
	// crypto/rand.Read never fails since Go 1.24; it crashes the program
	// instead of returning predictable bytes.
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
