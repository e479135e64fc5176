// Package lambdainvoke starts a Lambda function asynchronously, through
// the Lambda Invoke API with InvocationType Event.
package lambdainvoke

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// CallTimeout bounds one Invoke: Lambda answers an asynchronous one once
// the event is queued, in milliseconds; a call still waiting after this is
// better given up, so the caller can do the work itself.
const CallTimeout = 5 * time.Second

// MaxPayloadBytes is Lambda's limit on an asynchronous invocation's
// payload.
const MaxPayloadBytes = 256 << 10

// API is the part of the Lambda client an Invoker uses.
type API interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Invoker starts one function.
type Invoker struct {
	api      API
	function string
}

// New returns an Invoker of function (a name or ARN).
func New(api API, function string) *Invoker {
	return &Invoker{api: api, function: function}
}

// Invoke queues payload for the function and returns once Lambda has
// accepted it (202), not when the function has run.
func (i *Invoker) Invoke(ctx context.Context, payload []byte) error {
	if len(payload) > MaxPayloadBytes {
		return fmt.Errorf("lambdainvoke: %s: payload of %d bytes, the limit is %d", i.function, len(payload), MaxPayloadBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	out, err := i.api.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(i.function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("lambdainvoke: %s: %w", i.function, err)
	}
	if out.StatusCode != 202 {
		return fmt.Errorf("lambdainvoke: %s: answered %d, want 202 (accepted)", i.function, out.StatusCode)
	}
	return nil
}
