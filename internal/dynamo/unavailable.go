package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/pushgate/pushgate/internal/domain"
)

// throttleCodes are DynamoDB's error codes for a request refused under
// load; the SDK has retried each before it reaches the store.
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
}

// unavailable marks err as domain.ErrUnavailable when DynamoDB refused
// the call for now: throttled, a server fault, or a transaction cancelled
// for throttling or a conflicting transaction. Such a call changed
// nothing, and the caller may repeat it.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	temporary := false
	var resp *awshttp.ResponseError
	var api smithy.APIError
	var cancelled *types.TransactionCanceledException
	switch {
	case errors.As(err, &cancelled):
		for _, r := range cancelled.CancellationReasons {
			if c := aws.ToString(r.Code); c == "ThrottlingError" || c == "TransactionConflict" {
				temporary = true
			}
		}
	case errors.As(err, &api) && throttleCodes[api.ErrorCode()]:
		temporary = true
	case errors.As(err, &resp) && resp.HTTPStatusCode() >= 500:
		temporary = true
	}
	if !temporary {
		return err
	}
	return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
}

// classified is the client with its temporary failures marked.
type classified struct{ api API }

// withClassifiedErrors wraps client once.
func withClassifiedErrors(client API) API {
	if c, ok := client.(classified); ok {
		return c
	}
	return classified{client}
}

func (c classified) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := c.api.GetItem(ctx, in, optFns...)
	return out, unavailable(err)
}

func (c classified) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := c.api.UpdateItem(ctx, in, optFns...)
	return out, unavailable(err)
}

func (c classified) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.api.Query(ctx, in, optFns...)
	return out, unavailable(err)
}

func (c classified) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := c.api.TransactWriteItems(ctx, in, optFns...)
	return out, unavailable(err)
}

func (c classified) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	out, err := c.api.BatchWriteItem(ctx, in, optFns...)
	return out, unavailable(err)
}
