package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/snspub"
)

// An external store outlives nothing of the stack's: a moto that restarts
// comes back empty. The stack then recreates its tables, topic and
// subscriptions on the first call that misses them and repeats that call,
// so it keeps working; a socket whose record went with the tables is told
// not_found, and the client reconnects. Deployed, nothing of this runs.

// healingTables is the stack's DynamoDB client on an external store.
type healingTables struct {
	api      *dynamodb.Client
	endpoint string
	conns    string
	items    string
	log      *slog.Logger
	mu       sync.Mutex
}

var _ dynamo.API = (*healingTables)(nil)

// create makes both tables if missing (dynamo.CreateTables is idempotent).
func (h *healingTables) create(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return dynamo.CreateTables(ctx, h.api, h.conns, h.items)
}

// retry repeats call once after recreating the tables, when it failed
// because a table is missing.
func retry[T any](ctx context.Context, h *healingTables, call func() (T, error)) (T, error) {
	out, err := call()
	var missing *types.ResourceNotFoundException
	if !errors.As(err, &missing) {
		return out, err
	}
	if cerr := h.create(ctx); cerr != nil {
		h.log.ErrorContext(ctx, "the DynamoDB store lost the stack's tables and they could not be recreated; "+
			"check that it runs at the endpoint, then restart the local stack",
			"endpoint", h.endpoint, "tables", []string{h.conns, h.items}, "error", cerr.Error())
		return out, fmt.Errorf("%w (recreating the tables: %w)", err, cerr)
	}
	h.log.WarnContext(ctx, "the DynamoDB store had lost the stack's tables (restarted?); recreated them empty",
		"endpoint", h.endpoint, "tables", []string{h.conns, h.items})
	return call()
}

func (h *healingTables) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return retry(ctx, h, func() (*dynamodb.GetItemOutput, error) { return h.api.GetItem(ctx, in, opts...) })
}

func (h *healingTables) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return retry(ctx, h, func() (*dynamodb.UpdateItemOutput, error) { return h.api.UpdateItem(ctx, in, opts...) })
}

func (h *healingTables) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return retry(ctx, h, func() (*dynamodb.QueryOutput, error) { return h.api.Query(ctx, in, opts...) })
}

func (h *healingTables) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return retry(ctx, h, func() (*dynamodb.TransactWriteItemsOutput, error) { return h.api.TransactWriteItems(ctx, in, opts...) })
}

func (h *healingTables) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return retry(ctx, h, func() (*dynamodb.BatchWriteItemOutput, error) { return h.api.BatchWriteItem(ctx, in, opts...) })
}

// topicLink is one topic on an external SNS and the stack's HTTP
// subscriptions to it.
type topicLink struct {
	client    *sns.Client
	arn       string
	endpoints []string
	log       *slog.Logger

	mu   sync.Mutex
	subs []string // subscription ARNs
}

// subscribe creates the topic if missing (CreateTopic is idempotent, and
// gives the same ARN for the same name) and subscribes every endpoint.
func (l *topicLink) subscribe(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	name := l.arn[strings.LastIndex(l.arn, ":")+1:]
	out, err := l.client.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	if got := aws.ToString(out.TopicArn); got != l.arn {
		return fmt.Errorf("topic %s came back as %s", l.arn, got)
	}
	l.subs = l.subs[:0]
	for _, endpoint := range l.endpoints {
		sub, err := l.client.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn: aws.String(l.arn), Protocol: aws.String("http"), Endpoint: aws.String(endpoint),
			ReturnSubscriptionArn: true,
		})
		if err != nil {
			return fmt.Errorf("subscribe %s to %s: %w", endpoint, l.arn, err)
		}
		l.subs = append(l.subs, aws.ToString(sub.SubscriptionArn))
	}
	return nil
}

// unsubscribe removes the stack's subscriptions; ones already gone with
// their topic are no error.
func (l *topicLink) unsubscribe(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, sub := range l.subs {
		_, err := l.client.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(sub)})
		if err != nil && !notFound(err) {
			errs = append(errs, err)
		}
	}
	l.subs = nil
	return errors.Join(errs...)
}

// Publish implements snspub.API: a publish to a topic that is gone
// recreates it with its subscriptions and is repeated.
func (l *topicLink) Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error) {
	out, err := l.client.Publish(ctx, in, opts...)
	if !notFound(err) {
		return out, err
	}
	if serr := l.subscribe(ctx); serr != nil {
		l.log.ErrorContext(ctx, "the SNS endpoint lost the stack's topic and it could not be recreated; "+
			"check that it runs at the endpoint, then restart the local stack", "topic", l.arn, "error", serr.Error())
		return out, fmt.Errorf("%w (recreating the topic: %w)", err, serr)
	}
	l.log.WarnContext(ctx, "the SNS endpoint had lost the stack's topic (restarted?); recreated it and its subscriptions",
		"topic", l.arn, "endpoints", l.endpoints)
	return l.client.Publish(ctx, in, opts...)
}

var _ snspub.API = (*topicLink)(nil)

func notFound(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotFound"
}
