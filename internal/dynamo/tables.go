package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushgate/pushgate/internal/backoff"
)

// TablesAPI is the part of the DynamoDB client CreateTables uses.
type TablesAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
}

var _ TablesAPI = (*dynamodb.Client)(nil)

// How long CreateTables waits for a table to become active, and how often
// it looks.
const (
	tableActiveTimeout = 2 * time.Minute
	tablePollInterval  = 200 * time.Millisecond
)

// TableInputs returns the definitions of the connections and items tables,
// the same the SAM template declares.
func TableInputs(connectionsTable, itemsTable string) []*dynamodb.CreateTableInput {
	table := func(name, hash, rng string) *dynamodb.CreateTableInput {
		return &dynamodb.CreateTableInput{
			TableName:   aws.String(name),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(hash), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(rng), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange},
			},
		}
	}
	items := table(itemsTable, attrRoom, attrID)
	items.AttributeDefinitions = append(items.AttributeDefinitions,
		types.AttributeDefinition{AttributeName: aws.String(attrOutbox), AttributeType: types.ScalarAttributeTypeS},
		types.AttributeDefinition{AttributeName: aws.String(attrOutboxAt), AttributeType: types.ScalarAttributeTypeN})
	items.GlobalSecondaryIndexes = []types.GlobalSecondaryIndex{{
		IndexName: aws.String(OutboxIndex),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrOutbox), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrOutboxAt), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{
			ProjectionType:   types.ProjectionTypeInclude,
			NonKeyAttributes: []string{attrEventFrame, TTLAttribute},
		},
	}}
	return []*dynamodb.CreateTableInput{table(connectionsTable, attrPK, attrSK), items}
}

// CreateTables creates both tables unless they exist, waits until they are
// active and enables TTL on TTLAttribute; running it again is harmless.
func CreateTables(ctx context.Context, client TablesAPI, connectionsTable, itemsTable string) error {
	for _, in := range TableInputs(connectionsTable, itemsTable) {
		if err := ensureTable(ctx, client, in); err != nil {
			return err
		}
	}
	return nil
}

func ensureTable(ctx context.Context, client TablesAPI, in *dynamodb.CreateTableInput) error {
	name := *in.TableName
	_, err := client.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamo: create table %s: %w", name, err)
	}
	if err := waitActive(ctx, client, name); err != nil {
		return err
	}
	if err := ensureIndexes(ctx, client, in); err != nil {
		return err
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &name})
	if err != nil {
		return fmt.Errorf("dynamo: describe TTL of %s: %w", name, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: &name,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("dynamo: enable TTL on %s: %w", name, err)
	}
	return nil
}

// ensureIndexes adds the indexes in that a table made by an older version
// lacks (a local store kept across upgrades), and waits until they are
// active.
func ensureIndexes(ctx context.Context, client TablesAPI, in *dynamodb.CreateTableInput) error {
	if len(in.GlobalSecondaryIndexes) == 0 {
		return nil
	}
	name := *in.TableName
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	if err != nil {
		return fmt.Errorf("dynamo: describe table %s: %w", name, err)
	}
	have := map[string]bool{}
	for _, gsi := range out.Table.GlobalSecondaryIndexes {
		have[aws.ToString(gsi.IndexName)] = true
	}
	for _, gsi := range in.GlobalSecondaryIndexes {
		if have[*gsi.IndexName] {
			continue
		}
		_, err := client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:            &name,
			AttributeDefinitions: in.AttributeDefinitions,
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
				IndexName: gsi.IndexName, KeySchema: gsi.KeySchema, Projection: gsi.Projection,
			}}},
		})
		if err != nil {
			return fmt.Errorf("dynamo: add index %s to %s: %w", *gsi.IndexName, name, err)
		}
		if err := waitActive(ctx, client, name); err != nil {
			return err
		}
	}
	return nil
}

func waitActive(ctx context.Context, client TablesAPI, name string) error {
	ctx, cancel := context.WithTimeout(ctx, tableActiveTimeout)
	defer cancel()
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
		var notFound *types.ResourceNotFoundException
		switch {
		case errors.As(err, &notFound):
			// Just created: not visible yet.
		case err != nil:
			return fmt.Errorf("dynamo: describe table %s: %w", name, err)
		case out.Table != nil && out.Table.TableStatus == types.TableStatusActive:
			return nil
		}
		if err := backoff.Sleep(ctx, tablePollInterval); err != nil {
			return fmt.Errorf("dynamo: table %s not active: %w", name, err)
		}
	}
}
