// Package wsclient is a WebSocket client for tests of a running stack: it
// reads every frame in the background so a test can wait for the next one,
// assert that none comes, or see how the socket ended.
package wsclient

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Wait bounds how long Next and Closed wait.
const Wait = 5 * time.Second

// QuietFor is how long Quiet listens.
const QuietFor = 300 * time.Millisecond

// Client is one test socket, closed when the test ends.
type Client struct {
	t    testing.TB
	Conn *websocket.Conn
	recv chan Frame
	done chan struct{}
	err  error
}

// Frame is one message the client received.
type Frame struct {
	Type websocket.MessageType
	Data []byte
}

// Dial connects to url and starts reading.
func Dial(t testing.TB, url string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(1 << 20)
	cl := &Client{t: t, Conn: c, recv: make(chan Frame, 256), done: make(chan struct{})}
	go func() {
		defer close(cl.done)
		for {
			typ, data, err := c.Read(context.Background())
			if err != nil {
				cl.err = err
				return
			}
			cl.recv <- Frame{typ, data}
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return cl
}

// Send writes body as one text message.
func (c *Client) Send(body string) {
	c.t.Helper()
	c.Write(websocket.MessageText, []byte(body))
}

// Write writes one message of the given type; a failure ends the test.
func (c *Client) Write(typ websocket.MessageType, data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if err := c.Conn.Write(ctx, typ, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Receive waits up to d for the next message and, unlike NextFrame, fails
// with an error rather than the test, so another goroutine may call it.
func (c *Client) Receive(d time.Duration) (Frame, error) {
	select {
	case f := <-c.recv:
		return f, nil
	case <-c.done:
		return Frame{}, fmt.Errorf("socket closed: %w", c.err)
	case <-time.After(d):
		return Frame{}, fmt.Errorf("no frame within %v", d)
	}
}

// NextFrame waits for the next message.
func (c *Client) NextFrame() Frame {
	c.t.Helper()
	return c.nextFrame(Wait)
}

func (c *Client) nextFrame(d time.Duration) Frame {
	c.t.Helper()
	f, err := c.Receive(d)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// Next waits for the next message and decodes it as a JSON object.
func (c *Client) Next() map[string]any {
	c.t.Helper()
	return c.NextWithin(Wait)
}

// NextWithin is Next waiting up to d, for a frame that retries with
// backoff stand between.
func (c *Client) NextWithin(d time.Duration) map[string]any {
	c.t.Helper()
	f := c.nextFrame(d)
	var m map[string]any
	if err := json.Unmarshal(f.Data, &m); err != nil {
		c.t.Fatalf("frame is not a JSON object: %q", f.Data)
	}
	return m
}

// Quiet asserts that no message arrives for QuietFor.
func (c *Client) Quiet() {
	c.t.Helper()
	select {
	case f := <-c.recv:
		c.t.Fatalf("unexpected frame %.200q", f.Data)
	case <-time.After(QuietFor):
	}
}

// Closed waits for the server to close the socket and returns the code.
func (c *Client) Closed() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.done:
		return websocket.CloseStatus(c.err)
	case <-time.After(2 * Wait):
		c.t.Fatalf("socket not closed within %v", 2*Wait)
	}
	return 0
}
