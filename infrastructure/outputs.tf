output "slack_interactivity_url" {
  description = "Paste into the Slack app's Interactivity Request URL (slack/manifest.yaml)."
  value       = "${aws_apigatewayv2_stage.default.invoke_url}slack/interactions"
}

output "slack_commands_url" {
  description = "Paste into the Slack app's /break-glass slash command Request URL (slack/manifest.yaml)."
  value       = "${aws_apigatewayv2_stage.default.invoke_url}slack/commands"
}

output "slack_events_url" {
  description = "Paste into the Slack app's Event Subscriptions Request URL (slack/manifest.yaml)."
  value       = "${aws_apigatewayv2_stage.default.invoke_url}slack/events"
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
  description = "report-on-access's role: a principal modules/target-account's audit role trusts in each target account."
  value       = aws_iam_role.function["report-on-access"].arn
}

output "reconcile_role_arn" {
  description = "reconcile-access's role: modules/target-account's reconcile_role_arn, so its sweeps can drop expired Denies from the session revocation policy."
  value       = aws_iam_role.function["reconcile-access"].arn
}

output "revoke_role_arn" {
  description = "revoke-access's role: modules/target-account's revoke_role_arn, so it can end sessions in each target account."
  value       = aws_iam_role.function["revoke-access"].arn
}

output "function_names" {
  description = "The Lambda functions: the six of the product and notify (the report binary for alerts)."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}

# What `break-glass-local doctor --outputs -` reads (with the outputs above)
# to check a deployment without granting anything.

output "region" {
  description = "The region the functions, the state machine and SES run in."
  value       = local.region
}

output "sso_instance_arn" {
  description = "The IAM Identity Center instance break glass assigns in."
  value       = var.sso_instance_arn
}

output "identity_store_id" {
  description = "The Identity Store clickers are looked up in."
  value       = var.identity_store_id
}

output "allowed_account_ids" {
  description = "The accounts break glass may grant in."
  value       = var.allowed_account_ids
}

output "allowed_permission_set_arns" {
  description = "The permission sets break glass may grant; each must be provisioned to each allowed account."
  value       = var.allowed_permission_set_arns
}

output "report_sender" {
  description = "The SES identity reports are sent from; it must be verified in this region."
  value       = var.report_sender
}

output "audit_role_name" {
  description = "The audit role report-on-access assumes in each allowed account; empty: it reads this account's CloudTrail."
  value       = var.audit_role_name
}

output "function_arns" {
  description = "The Lambda functions' ARNs by key (the state machine's definition names grant-access, hold-access, revoke-access, report-on-access and notify)."
  value       = { for k, f in aws_lambda_function.this : k => f.arn }
}

output "policy_parameter_name" {
  description = "The SSM parameter holding the policy's rules (null without policy_rules): break-glass-local doctor lists each rule from it."
  value       = local.policy_parameter_name
}

output "session_revocation_policy_name" {
  description = "The session revocation policy in each target account (for doctor, and for the permission sets' customer managed policy reference)."
  value       = var.session_revocation_policy_name
}

output "end_sessions_on_revoke" {
  description = "Whether revoke-access ends the sessions opened during a grant (with an audit role)."
  value       = var.end_sessions_on_revoke
}
