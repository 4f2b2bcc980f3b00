# reconcile-access: what starts it. A schedule sweeps the grant ledger; an
# execution of our state machine ending ABORTED, TIMED_OUT or FAILED (which
# skips the revoke) starts it at once, naming that execution. Both invoke it
# asynchronously; a lost invocation is redone by the next sweep.

resource "aws_lambda_function_event_invoke_config" "reconcile" {
  function_name = aws_lambda_function.this["reconcile-access"].function_name
  # The next sweep is never more than reconcile_schedule away: no retries
  # of a stale event, no queue of them.
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 3600
}

# The schedule, with a role that may invoke this function only.
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "reconcile_schedule" {
  name               = "${var.name}-reconcile-schedule"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "reconcile_schedule" {
  statement {
    sid       = "InvokeReconcile"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["reconcile-access"].arn]
  }
}

resource "aws_iam_role_policy" "reconcile_schedule" {
  name   = "${var.name}-reconcile-schedule"
  role   = aws_iam_role.reconcile_schedule.id
  policy = data.aws_iam_policy_document.reconcile_schedule.json
}

resource "aws_scheduler_schedule" "reconcile" {
  #checkov:skip=CKV_AWS_297:The schedule's input is a fixed, non-secret event; there is nothing for a customer managed key to protect.
  name                = "${var.name}-reconcile"
  description         = "break-glass-access: sweep the grant ledger for assignments nobody holds any more"
  schedule_expression = var.reconcile_schedule
  state               = "ENABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this["reconcile-access"].arn
    role_arn = aws_iam_role.reconcile_schedule.arn
    # A sweep; the execution id makes each run's ledger lease its own.
    input = jsonencode({
      source = "aws.scheduler"
      id     = "<aws.scheduler.execution-id>"
    })

    retry_policy {
      maximum_retry_attempts = 0
    }
  }
}

# Our executions that ended without running their revoke.
resource "aws_cloudwatch_event_rule" "execution_ended" {
  name        = "${var.name}-execution-ended"
  description = "break-glass-access: an execution ended ABORTED, TIMED_OUT or FAILED; reconcile-access removes what it held"
  event_pattern = jsonencode({
    source        = ["aws.states"]
    "detail-type" = ["Step Functions Execution Status Change"]
    detail = {
      status          = ["ABORTED", "TIMED_OUT", "FAILED"]
      stateMachineArn = [aws_sfn_state_machine.this.arn]
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "execution_ended" {
  rule = aws_cloudwatch_event_rule.execution_ended.name
  arn  = aws_lambda_function.this["reconcile-access"].arn
}

resource "aws_lambda_permission" "execution_ended" {
  statement_id  = "AllowExecutionEndedRule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["reconcile-access"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.execution_ended.arn
}
