// Command items-write is the HTTP Lambda that writes items and publishes
// their events.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/httpapi"
	"github.com/pushgate/pushgate/internal/snspub"
)

func main() {
	cfg, awsCfg, log := config.Setup(context.Background(), config.ItemsWriteFunction)
	items := dynamo.NewItems(dynamodb.NewFromConfig(awsCfg), cfg.ItemsTable)
	pub := snspub.New(sns.NewFromConfig(awsCfg), cfg.TopicARN)
	lambda.Start(httpapi.NewWriter(items, pub, cfg.Gate(), log, httpapi.WithHistoryTTL(cfg.HistoryTTL)).Handle)
}
