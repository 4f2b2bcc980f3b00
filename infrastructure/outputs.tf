output "slack_interactivity_url" {
  description = "Paste into the Slack app's Interactivity Request URL (slack/manifest.yaml)."
  value       = "${aws_apigatewayv2_stage.default.invoke_url}slack/interactions"
}

output "state_machine_arn" {
  description = "The break-glass state machine."
  value       = aws_sfn_state_machine.this.arn
}

output "grant_ledger_table" {
  description = "The grant ledger's DynamoDB table: who holds which break-glass assignment, and why."
  value       = aws_dynamodb_table.ledger.name
}

output "signing_secret_arn" {
  description = "Put the Slack signing secret here (aws secretsmanager put-secret-value)."
  value       = aws_secretsmanager_secret.signing_secret.arn
}

output "bot_token_secret_arn" {
  description = "Put the Slack bot token here (aws secretsmanager put-secret-value)."
  value       = aws_secretsmanager_secret.bot_token.arn
}

output "alert_topic_arn" {
  description = "SNS topic for failed revokes, incomplete grants and alarms."
  value       = aws_sns_topic.alerts.arn
}

output "report_role_arn" {
  description = "report-on-access's role: the principal modules/audit-role trusts in each target account."
  value       = aws_iam_role.function["report-on-access"].arn
}

output "function_names" {
  description = "The five Lambda functions."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}
