resource "aws_sfn_state_machine" "this" {
  #checkov:skip=CKV_AWS_285:Execution data holds the Slack response_url (a credential) and users' e-mails; Step Functions keeps each execution's full history itself, logs carry the rest.
  name     = local.state_machine_name
  role_arn = aws_iam_role.state_machine.arn
  type     = "STANDARD"

  definition = templatefile("${path.module}/../statemachine/break-glass.asl.json", {
    grant_access_arn     = aws_lambda_function.this["grant-access"].arn
    revoke_access_arn    = aws_lambda_function.this["revoke-access"].arn
    hold_access_arn      = aws_lambda_function.this["hold-access"].arn
    report_on_access_arn = aws_lambda_function.this["report-on-access"].arn
    notify_arn           = aws_lambda_function.this["notify"].arn
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = false
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = aws_kms_key.this.arn
    kms_data_key_reuse_period_seconds = 300
  }

  tags = var.tags

  # Deleting a state machine terminates its running executions at their next
  # state transition: a grant holding access would end without its revoke
  # (reconcile-access's next sweep removes it, an alert later). Only a new
  # name (var.name) or type replaces it; a new definition is an in-place
  # update that running executions do not notice. So Terraform refuses to
  # delete it: drain first (README, "Upgrading"), then remove it by hand.
  lifecycle {
    prevent_destroy = true
  }
}
