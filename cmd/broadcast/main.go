// Command broadcast is the SNS-subscribed Lambda that pushes events to
// rooms, and posts the shares of big rooms it hands to itself.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	lambdaapi "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/pushgate/pushgate/internal/broadcast"
	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/lambdainvoke"
	"github.com/pushgate/pushgate/internal/mgmtapi"
)

func main() {
	cfg, awsCfg, log := config.Setup(context.Background(), config.BroadcastFunction)
	conns := dynamo.NewConnections(dynamodb.NewFromConfig(awsCfg), cfg.ConnectionsTable)
	poster, err := mgmtapi.New(awsCfg, cfg.ManagementEndpoint, cfg.Fanout.Workers)
	if err != nil {
		config.Exit(log, err)
	}
	shares := broadcast.Shares(lambdainvoke.New(lambdaapi.NewFromConfig(awsCfg), cfg.FanoutFunction))
	set := broadcast.Settings{Topic: cfg.TopicARN, Receipts: conns}
	h := broadcast.New(conns, fanout.New(poster, conns, cfg.Fanout).WithDispatcher(shares).WithCloser(poster), set, log)
	lambda.Start(h.Invoke)
}
