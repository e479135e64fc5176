// Command outbox is the scheduled Lambda that publishes the events whose
// publish failed after their write.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/outbox"
	"github.com/pushgate/pushgate/internal/snspub"
)

func main() {
	cfg, awsCfg, log := config.Setup(context.Background(), config.OutboxFunction)
	items := dynamo.NewItems(dynamodb.NewFromConfig(awsCfg), cfg.ItemsTable)
	pub := snspub.New(sns.NewFromConfig(awsCfg), cfg.TopicARN)
	lambda.Start(outbox.New(items, pub, cfg.OutboxGrace, log).Handle)
}
