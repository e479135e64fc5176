// Command broadcast is the SNS-subscribed Lambda that pushes events to rooms.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pushgate/pushgate/internal/broadcast"
	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/mgmtapi"
)

func main() {
	cfg, awsCfg, log := config.Setup(context.Background(), config.BroadcastFunction)
	conns := dynamo.NewConnections(dynamodb.NewFromConfig(awsCfg), cfg.ConnectionsTable)
	poster, err := mgmtapi.New(awsCfg, cfg.ManagementEndpoint, cfg.Fanout.Workers)
	if err != nil {
		config.Exit(log, err)
	}
	h := broadcast.New(conns, fanout.New(poster, conns, cfg.Fanout), log)
	lambda.Start(h.Handle)
}
