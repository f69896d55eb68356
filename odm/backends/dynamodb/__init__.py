"""The DynamoDB backend on boto3's low-level client (see docs/backends/dynamodb.md)."""
