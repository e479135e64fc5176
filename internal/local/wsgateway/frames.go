package wsgateway

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync/atomic"
)

// frameWatcher sits between a hijacked connection and coder/websocket, which
// reassembles fragmented messages without telling anyone how big each frame
// was. It parses the client's frame headers as the bytes pass and remembers
// the first data frame over limit, so API Gateway's per-frame quota can be
// enforced and not only the per-message one.
//
// A Read never returns bytes past the end of the current frame: the library
// therefore reaches a frame's header only when it starts reading that frame,
// and a flagged frame always belongs to the message being read, never to one
// the gateway has not seen yet.
type frameWatcher struct {
	net.Conn
	src   io.Reader // what the HTTP server had buffered, then the connection
	limit int64

	buf     []byte
	pending []byte

	hdr     [14]byte // the longest header: 2 + 8 (length) + 4 (mask key)
	hdrLen  int
	hdrNeed int // header bytes expected; 0 while in a frame's payload
	payload uint64

	tooBig atomic.Uint64 // payload length of the first oversized data frame
}

func newFrameWatcher(c net.Conn, src io.Reader, limit int64) *frameWatcher {
	return &frameWatcher{Conn: c, src: src, limit: limit, buf: make([]byte, 32*1024), hdrNeed: 2}
}

// oversized reports the length of the first data frame over the limit, or 0.
func (f *frameWatcher) oversized() uint64 { return f.tooBig.Load() }

func (f *frameWatcher) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(f.pending) == 0 {
		n, err := f.src.Read(f.buf)
		if n == 0 {
			return 0, err
		}
		// A read error with data repeats on the next read of a net.Conn.
		f.pending = f.buf[:n]
	}
	n := 0
	for n < len(p) && len(f.pending) > 0 {
		if f.hdrNeed == 0 {
			m := min(uint64(len(p)-n), uint64(len(f.pending)), f.payload)
			copy(p[n:], f.pending[:m])
			n += int(m)
			f.pending = f.pending[m:]
			f.payload -= m
			if f.payload == 0 {
				f.nextFrame()
				return n, nil
			}
			continue
		}
		b := f.pending[0]
		p[n] = b
		n++
		f.pending = f.pending[1:]
		if f.headerByte(b) && f.payload == 0 {
			f.nextFrame()
			return n, nil
		}
	}
	return n, nil
}

func (f *frameWatcher) nextFrame() {
	f.hdrLen = 0
	f.hdrNeed = 2
}

// headerByte consumes one header byte and reports whether the header is
// complete; then f.payload holds the frame's payload length.
func (f *frameWatcher) headerByte(b byte) bool {
	f.hdr[f.hdrLen] = b
	f.hdrLen++
	if f.hdrLen == 2 {
		switch f.hdr[1] & 0x7f {
		case 126:
			f.hdrNeed += 2
		case 127:
			f.hdrNeed += 8
		}
		if f.hdr[1]&0x80 != 0 {
			f.hdrNeed += 4
		}
	}
	if f.hdrLen < f.hdrNeed {
		return false
	}
	var length uint64
	switch l := f.hdr[1] & 0x7f; l {
	case 126:
		length = uint64(binary.BigEndian.Uint16(f.hdr[2:4]))
	case 127:
		// The library rejects a length with the top bit set; cap it so
		// the arithmetic here stays sane until it does.
		length = min(binary.BigEndian.Uint64(f.hdr[2:10]), math.MaxInt64)
	default:
		length = uint64(l)
	}
	f.payload = length
	f.hdrNeed = 0
	// Opcodes 0, 1 and 2 are continuation, text and binary frames.
	if op := f.hdr[0] & 0x0f; op <= 2 && length > uint64(f.limit) {
		f.tooBig.CompareAndSwap(0, length)
	}
	return true
}

// watchingWriter hands coder/websocket a hijacked connection whose reads go
// through a frameWatcher.
type watchingWriter struct {
	http.ResponseWriter
	limit   int64
	watcher *frameWatcher
}

func (w *watchingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("wsgateway: hijack: %w", err)
	}
	// Frames the client sent right behind its handshake may already sit in
	// the server's buffer; they must pass through the watcher too.
	buffered, err := brw.Reader.Peek(brw.Reader.Buffered())
	if err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("wsgateway: hijack: %w", err)
	}
	src := io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), c)
	w.watcher = newFrameWatcher(c, src, w.limit)
	return w.watcher, bufio.NewReadWriter(bufio.NewReader(w.watcher), brw.Writer), nil
}
