resource "aws_apigatewayv2_api" "slack" {
  name          = "${var.name}-slack"
  description   = "Slack endpoints for break-glass-access: interactivity, the slash command, events"
  protocol_type = "HTTP"
  tags          = var.tags
}

resource "aws_apigatewayv2_integration" "access_requested" {
  api_id                 = aws_apigatewayv2_api.slack.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.this["access-requested"].invoke_arn
  payload_format_version = "2.0"
  # Slack waits 3 seconds; answering late is answering never.
  timeout_milliseconds = 3000
}

resource "aws_apigatewayv2_route" "interactions" {
  #checkov:skip=CKV_AWS_309:Slack cannot authenticate to API Gateway; every request is authenticated by its Slack signature in access-requested.
  api_id    = aws_apigatewayv2_api.slack.id
  route_key = "POST /slack/interactions"
  target    = "integrations/${aws_apigatewayv2_integration.access_requested.id}"
}

# The /break-glass slash command (slack/manifest.yaml).
resource "aws_apigatewayv2_route" "commands" {
  #checkov:skip=CKV_AWS_309:Slack cannot authenticate to API Gateway; every request is authenticated by its Slack signature in access-requested.
  api_id    = aws_apigatewayv2_api.slack.id
  route_key = "POST /slack/commands"
  target    = "integrations/${aws_apigatewayv2_integration.access_requested.id}"
}

# The Events API (App Home's app_home_opened, and its URL verification).
resource "aws_apigatewayv2_route" "events" {
  #checkov:skip=CKV_AWS_309:Slack cannot authenticate to API Gateway; every request is authenticated by its Slack signature in access-requested.
  api_id    = aws_apigatewayv2_api.slack.id
  route_key = "POST /slack/events"
  target    = "integrations/${aws_apigatewayv2_integration.access_requested.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.slack.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.api_throttling.burst_limit
    throttling_rate_limit  = var.api_throttling.rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    # No body, no query string: the request carries the response_url.
    format = jsonencode({
      requestId      = "$context.requestId"
      ip             = "$context.identity.sourceIp"
      requestTime    = "$context.requestTime"
      routeKey       = "$context.routeKey"
      status         = "$context.status"
      latency        = "$context.responseLatency"
      integrationErr = "$context.integrationErrorMessage"
    })
  }

  tags = var.tags
}
