package dynamo

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pushgate/pushgate/internal/domain"
)

func TestUnavailableMarksOnlyTemporaryFailures(t *testing.T) {
	status := func(code int) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("boom")}}
	}
	cancelled := func(codes ...string) error {
		e := &types.TransactionCanceledException{}
		for _, c := range codes {
			e.CancellationReasons = append(e.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
		}
		return e
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"throughput exceeded", &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}, true},
		{"request limit", &types.RequestLimitExceeded{}, true},
		{"throttling", &smithy.GenericAPIError{Code: "ThrottlingException"}, true},
		{"internal server error", &types.InternalServerError{}, true},
		{"a 503 without a code", status(http.StatusServiceUnavailable), true},
		{"transaction throttled", cancelled("None", "ThrottlingError"), true},
		{"transaction conflict", cancelled("TransactionConflict"), true},
		{"wrapped", fmt.Errorf("put: %w", &types.ProvisionedThroughputExceededException{}), true},
		{"condition failed", &types.ConditionalCheckFailedException{}, false},
		{"transaction condition failed", cancelled("ConditionalCheckFailed", "None"), false},
		{"no such table", &types.ResourceNotFoundException{}, false},
		{"validation", &smithy.GenericAPIError{Code: "ValidationException"}, false},
		{"a 400 without a code", status(http.StatusBadRequest), false},
		{"not an AWS error", errors.New("context deadline exceeded"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unavailable(tt.err)
			if errors.Is(got, domain.ErrUnavailable) != tt.want {
				t.Fatalf("unavailable(%v) = %v; marked: %v, want %v", tt.err, got, !tt.want, tt.want)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("the cause is lost: %v", got)
			}
			var e *domain.Error
			if tt.want && (!errors.As(domain.AsError(got), &e) || e.Status != http.StatusServiceUnavailable || e.Code != domain.CodeUnavailable) {
				t.Errorf("AsError = %+v, want 503 unavailable", domain.AsError(got))
			}
		})
	}
	if unavailable(nil) != nil {
		t.Error("unavailable(nil) is not nil")
	}
}
