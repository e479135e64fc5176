package wsgateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/pushgate/pushgate/internal/wire"
)

// conn is one client connection.
type conn struct {
	id          string
	connectedAt time.Time
	sourceIP    string
	userAgent   string
	domainName  string
	// authorizer is the $connect authorizer's context, which every event
	// of the connection carries; nil without an authorizer.
	authorizer map[string]any
	// ctx carries the upgrade request's values but not its cancellation:
	// handlers run long after that request has been hijacked.
	ctx context.Context
	// ready is closed once the handshake has finished; ws and frames are
	// set before that, and ws stays nil if the handshake failed.
	ready  chan struct{}
	ws     *websocket.Conn
	frames *frameWatcher

	lastClient  atomic.Int64 // UnixNano of the last client message
	lastTraffic atomic.Int64 // UnixNano of the last data frame either way

	mu      sync.Mutex
	closing bool
	code    websocket.StatusCode
	reason  string
	closeCh chan struct{} // closed by the first requestClose

	// The send queue: messages for the client, written by writeLoop.
	qmu        sync.Mutex
	queue      []message
	queued     int           // bytes in queue
	wake       chan struct{} // a message was queued (capacity 1)
	writerDone chan struct{} // closed when writeLoop returns
}

// requestClose records why the connection ends and wakes serve to close it.
// Only the first call counts; it reports whether this call was the first.
func (c *conn) requestClose(code websocket.StatusCode, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.closing, c.code, c.reason = true, code, reason
	close(c.closeCh)
	return true
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// dropping reports that the connection is closing because its client does
// not read, so nothing more is written to it.
func (c *conn) dropping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing && c.code == StatusSendQueueFull
}

func (c *conn) closeStatus() (websocket.StatusCode, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

// message is one message waiting to be written to the client.
type message struct {
	typ  websocket.MessageType
	data []byte
}

// enqueue queues one message for the client and returns at once, as API
// Gateway accepts a post and deals with slow clients itself. Text that is
// not UTF-8 goes as a binary frame: a browser fails the whole connection
// on a text frame it cannot decode. A client whose queue would hold more
// than limit bytes is not reading; it is closed with StatusSendQueueFull,
// and enqueue reports false, as for a closing connection.
func (c *conn) enqueue(typ websocket.MessageType, data []byte, limit int) bool {
	if typ == websocket.MessageText && !utf8.Valid(data) {
		typ = websocket.MessageBinary
	}
	c.qmu.Lock()
	overflow := c.queued+len(data) > limit
	if !overflow {
		c.queue = append(c.queue, message{typ, data})
		c.queued += len(data)
	}
	c.qmu.Unlock()
	if overflow {
		c.requestClose(StatusSendQueueFull, reasonSendQueueFull)
		return false
	}
	select {
	case c.wake <- struct{}{}:
	default: // the writer is awake already
	}
	return !c.isClosing()
}

// next takes the oldest queued message.
func (c *conn) next() (message, bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.queue) == 0 {
		return message{}, false
	}
	m := c.queue[0]
	c.queue[0] = message{}
	c.queue = c.queue[1:]
	c.queued -= len(m.data)
	return m, true
}

// writeLoop writes queued messages in order until the connection closes.
// A normal close lets it finish the queue first, so what was posted before
// a DeleteConnection still arrives; a client that stopped reading gets
// nothing more.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	for {
		if m, ok := c.next(); ok {
			if c.dropping() {
				return
			}
			if err := c.write(m.typ, m.data); err != nil {
				// A client that does not read for writeTimeout is as
				// good as gone.
				c.requestClose(StatusSendQueueFull, reasonSendQueueFull)
				return
			}
			continue
		}
		select {
		case <-c.wake:
		case <-c.closeCh:
			if c.drained() {
				return
			}
		}
	}
}

func (c *conn) drained() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return len(c.queue) == 0
}

// write sends one message, split into frames of at most 32 KB, within
// writeTimeout.
func (c *conn) write(typ websocket.MessageType, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := c.writeFrames(ctx, typ, data); err != nil {
		return fmt.Errorf("wsgateway: write to %s: %w", c.id, err)
	}
	c.lastTraffic.Store(time.Now().UnixNano())
	return nil
}

func (c *conn) writeFrames(ctx context.Context, typ websocket.MessageType, data []byte) error {
	if len(data) <= wire.MaxFrameBytes {
		return c.ws.Write(ctx, typ, data)
	}
	// Each Write on a message writer is one frame.
	w, err := c.ws.Writer(ctx, typ)
	if err != nil {
		return err
	}
	for len(data) > 0 {
		n := min(len(data), wire.MaxFrameBytes)
		if _, err := w.Write(data[:n]); err != nil {
			_ = w.Close()
			return err
		}
		data = data[n:]
	}
	return w.Close()
}

// errTooBig ends a connection whose client broke API Gateway's frame or
// message size quota; API Gateway closes those with 1009.
var errTooBig = errors.New("wsgateway: message or frame too big")

// errBinary ends a connection whose client sent a binary message: API
// Gateway rejects binary frames and closes with 1003.
var errBinary = errors.New("wsgateway: binary frame")

// readLoop reads client messages and dispatches each before reading the
// next, until the connection fails or closes.
func (g *Gateway) readLoop(c *conn) error {
	var buf bytes.Buffer
	chunk := make([]byte, 16*1024)
	for {
		typ, body, err := c.readMessage(&buf, chunk)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			return errBinary
		}
		now := time.Now().UnixNano()
		c.lastClient.Store(now)
		c.lastTraffic.Store(now)
		g.dispatch(c, body)
	}
}

// readMessage reads one message, checking the frame watcher as the frames
// arrive so an oversized frame is refused before its payload is read.
// The body it returns lives in body's buffer until the next call.
func (c *conn) readMessage(body *bytes.Buffer, chunk []byte) (websocket.MessageType, []byte, error) {
	typ, r, err := c.ws.Reader(c.ctx)
	if err != nil {
		return 0, nil, err
	}
	body.Reset()
	for {
		if n := c.frames.oversized(); n > 0 {
			return 0, nil, fmt.Errorf("%w: a %d-byte frame; the limit is %d", errTooBig, n, wire.MaxFrameBytes)
		}
		n, err := r.Read(chunk)
		body.Write(chunk[:n])
		if body.Len() > wire.MaxMessageBytes {
			return 0, nil, fmt.Errorf("%w: message over %d bytes", errTooBig, wire.MaxMessageBytes)
		}
		if errors.Is(err, io.EOF) {
			if n := c.frames.oversized(); n > 0 {
				return 0, nil, fmt.Errorf("%w: a %d-byte frame; the limit is %d", errTooBig, n, wire.MaxFrameBytes)
			}
			return typ, body.Bytes(), nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// dispatch routes one message, invokes its handler and sends the client
// what API Gateway would: the route response, or an error frame.
func (g *Gateway) dispatch(c *conn, data []byte) {
	key := g.selectRoute(data)
	rc := g.requestContext(c, key, eventMessage, time.Now())
	rc.MessageID = newID()
	route, ok := g.routes[key]
	if !ok {
		g.logRoute(c, key, rc.RequestID, http.StatusForbidden, 0, "no route matches and there is no $default route")
		g.reply(c, websocket.MessageText, gatewayError("Forbidden", c.id, rc.RequestID))
		return
	}
	req := events.APIGatewayWebsocketProxyRequest{RequestContext: rc, Body: string(data)}
	start := time.Now()
	resp, err := invoke(c.ctx, route.Handler, req)
	elapsed := time.Since(start)
	switch {
	case errors.Is(err, errIntegrationTimeout):
		g.logRoute(c, key, rc.RequestID, http.StatusGatewayTimeout, elapsed, err.Error())
		g.reply(c, websocket.MessageText, gatewayError("Endpoint request timed out", c.id, rc.RequestID))
	case err != nil:
		g.logRoute(c, key, rc.RequestID, http.StatusInternalServerError, elapsed, err.Error())
		g.reply(c, websocket.MessageText, gatewayError("Internal server error", c.id, rc.RequestID))
	default:
		g.logRoute(c, key, rc.RequestID, max(resp.StatusCode, http.StatusOK), elapsed, "")
		if !route.TwoWay || resp.Body == "" {
			return
		}
		if !resp.IsBase64Encoded {
			g.reply(c, websocket.MessageText, []byte(resp.Body))
			return
		}
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			g.log.Warn("websocket route response is not valid base64", "connectionId", c.id, "route", key)
			g.reply(c, websocket.MessageText, gatewayError("Internal server error", c.id, rc.RequestID))
			return
		}
		g.reply(c, websocket.MessageBinary, b)
	}
}

// reply queues a frame for the client on behalf of the gateway; a client
// too slow to take it is closed by enqueue.
func (g *Gateway) reply(c *conn, typ websocket.MessageType, data []byte) {
	if !c.enqueue(typ, data, g.sendQueueBytes) {
		g.log.Debug("websocket reply not sent", "connectionId", c.id)
	}
}
