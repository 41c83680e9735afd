"""The AWS side and Slack: one adapter per service the domain talks to (the registry's version and
approval stores on DynamoDB, the artifact store on S3, Step Functions, EventBridge, Slack, the
SageMaker runtime for the pipeline and for the API). Each turns botocore's ClientError into a
domain error, so nothing above them sees botocore."""
