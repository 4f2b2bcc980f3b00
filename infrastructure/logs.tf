locals {
  # Every log group this module creates, by name: the key policy (kms.tf)
  # lets CloudWatch Logs use the key for these and no others. Names, not
  # the resources' ARNs, because the log groups refer to the key.
  function_log_groups     = { for name, _ in local.functions : name => "/aws/lambda/${var.name}-${name}" }
  api_log_group           = "/aws/apigateway/${var.name}-slack"
  state_machine_log_group = "/aws/vendedlogs/states/${local.state_machine_name}"
  log_group_arns = [
    for group in concat(values(local.function_log_groups), [local.api_log_group, local.state_machine_log_group]) :
    "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:${group}"
  ]
}

resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.functions
  name              = local.function_log_groups[each.key]
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "api" {
  name              = local.api_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "state_machine" {
  name              = local.state_machine_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}
