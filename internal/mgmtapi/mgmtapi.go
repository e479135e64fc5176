// Package mgmtapi posts frames to WebSocket connections through the API
// Gateway Management API (PostToConnection), as the fan-out's domain.Poster.
package mgmtapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/pushgate/pushgate/internal/domain"
)

// Client posts to one stage of one WebSocket API.
type Client struct {
	api *apigatewaymanagementapi.Client
}

// New returns a Client for endpoint (https://{api-id}.execute-api.{region}.amazonaws.com/{stage},
// a custom domain, or a local emulator). The SDK's own retries are off: the
// fan-out retries with backoff shared across all workers. conns sizes the
// idle connection pool so every worker reuses its TLS connection.
func New(cfg aws.Config, endpoint string, conns int) *Client {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = conns
		t.MaxIdleConnsPerHost = conns
	})
	api := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = httpClient
		o.Retryer = aws.NopRetryer{}
	})
	return &Client{api: api}
}

// Post sends frame to the connection. A failure is a *domain.PostError
// carrying the HTTP status, 410 for a connection that is gone.
func (c *Client) Post(ctx context.Context, connectionID string, frame []byte) error {
	_, err := c.api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID),
		Data:         frame,
	})
	if err == nil {
		return nil
	}
	return &domain.PostError{ConnectionID: connectionID, Status: status(err), Err: err}
}

// Delete closes the connection (DeleteConnection); a gone connection is not
// an error.
func (c *Client) Delete(ctx context.Context, connectionID string) error {
	_, err := c.api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{
		ConnectionId: aws.String(connectionID),
	})
	if err == nil || status(err) == http.StatusGone {
		return nil
	}
	return &domain.PostError{ConnectionID: connectionID, Status: status(err), Err: err}
}

func status(err error) int {
	var gone *types.GoneException
	if errors.As(err, &gone) {
		return http.StatusGone
	}
	var limit *types.LimitExceededException
	if errors.As(err, &limit) {
		return http.StatusTooManyRequests
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
