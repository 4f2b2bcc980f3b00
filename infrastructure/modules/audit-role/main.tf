# Deploy in each target account: lets report-on-access read this account's
# CloudTrail management events, and nothing else. In the account holding an
# organisation trail's log group (report_source = logs-insights), set
# cloudtrail_log_group_arn to let it run Logs Insights queries there too.
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      # The report, and whoever runs `break-glass-local doctor` to check
      # this role (it only reads CloudTrail).
      identifiers = concat([var.report_role_arn], var.checker_role_arns)
    }
  }
}

resource "aws_iam_role" "audit" {
  name                 = var.role_name
  description          = "Read-only CloudTrail access for break-glass-access reports"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "lookup" {
  statement {
    sid = "LookupEvents"
    # LookupEvents has no resource-level permissions.
    actions   = ["cloudtrail:LookupEvents"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "lookup" {
  name   = "cloudtrail-lookup"
  role   = aws_iam_role.audit.id
  policy = data.aws_iam_policy_document.lookup.json
}

data "aws_iam_policy_document" "logs_insights" {
  #checkov:skip=CKV_AWS_356:GetQueryResults and StopQuery name a query id, not a resource: the authorization reference lists no resource type to scope them to.
  count = var.cloudtrail_log_group_arn == "" ? 0 : 1
  statement {
    sid       = "StartQueriesOnTheTrailLogGroup"
    actions   = ["logs:StartQuery"]
    resources = [trimsuffix(var.cloudtrail_log_group_arn, ":*"), "${trimsuffix(var.cloudtrail_log_group_arn, ":*")}:*"]
  }
  statement {
    sid = "ReadAndStopQueries"
    # Query ids have no resource type to scope these to.
    actions   = ["logs:GetQueryResults", "logs:StopQuery"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "logs_insights" {
  count  = var.cloudtrail_log_group_arn == "" ? 0 : 1
  name   = "cloudtrail-logs-insights"
  role   = aws_iam_role.audit.id
  policy = data.aws_iam_policy_document.logs_insights[0].json
}
