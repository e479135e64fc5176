// Command items-read is the HTTP Lambda serving item reads; it holds no write
// or publish permission.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/httpapi"
)

func main() {
	cfg, awsCfg, log := config.Setup(context.Background(), config.ItemsReadFunction)
	items := dynamo.NewItems(dynamodb.NewFromConfig(awsCfg), cfg.ItemsTable)
	lambda.Start(httpapi.NewReader(items, cfg.ReadGate(), log).Handle)
}
