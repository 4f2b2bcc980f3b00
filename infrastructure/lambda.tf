# The functions from one image; each runs its binary as the entry point (its
# own name, or `binary`: notify is the report-on-access binary).
resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The functions call only public AWS APIs and Slack; a VPC would add NAT cost and a failure point without narrowing anything.
  #checkov:skip=CKV_AWS_116:API Gateway and Step Functions invoke synchronously and handle failures themselves; reconcile-access, invoked asynchronously (reconcile.tf), needs no dead-letter queue because its next sweep redoes a lost run.
  #checkov:skip=CKV_AWS_272:Lambda code signing does not apply to container images; pin image_uri by digest to get the same guarantee.
  for_each = local.functions

  function_name = "${var.name}-${each.key}"
  description   = "break-glass-access ${each.key}"
  role          = aws_iam_role.function[each.key].arn
  package_type  = "Image"
  image_uri     = var.image_uri
  architectures = [var.architecture]
  timeout       = each.value.timeout
  memory_size   = each.value.memory
  kms_key_arn   = aws_kms_key.this.arn

  reserved_concurrent_executions = each.value.concurrency

  image_config {
    entry_point = ["/var/task/${try(each.value.binary, each.key)}"]
  }

  environment {
    # Null means unset: an optional allow list must be absent, not empty.
    variables = { for name, value in local.environment[each.key] : name => value if value != null }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.function[each.key].name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = "Active"
  }

  tags = var.tags
}

# The Slack routes (api_gateway.tf: POST /slack/interactions, /slack/commands
# and /slack/events), by POST only: one permission for the three. Only a route
# integrated with access-requested can invoke it, so "slack/*" adds nothing
# the routes do not already decide.
resource "aws_lambda_permission" "api" {
  statement_id  = "AllowSlackEndpoint"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["access-requested"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.slack.execution_arn}/*/POST/slack/*"
}
