# Deploy in each target account. Two things live here:
# - the audit role: report-on-access reads this account's CloudTrail
#   management events through it, and revoke-access writes the session
#   revocation policy through it (on that one policy only). In the account
#   holding an organisation trail's log group (report_source =
#   logs-insights), set cloudtrail_log_group_arn to let the report run Logs
#   Insights queries there too;
# - the session-revocation policy: a customer managed policy the allowed
#   permission sets reference by name, without effect until revoke-access
#   adds a Deny on a removed user's earlier credentials to it.
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type = "AWS"
      # The report, revoke-access (to end sessions), reconcile-access (to
      # drop expired Denies), and whoever runs `break-glass-local doctor` to
      # check this role.
      identifiers = concat(
        [var.report_role_arn],
        [for arn in [var.revoke_role_arn, var.reconcile_role_arn] : arn if arn != ""],
        var.checker_role_arns,
      )
    }
  }
}

resource "aws_iam_role" "audit" {
  name                 = var.role_name
  description          = "break-glass-access: reads CloudTrail for reports, writes the session revocation policy"
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

# Break glass writes new versions of this policy (a Deny per removed user,
# dropped once their sessions have expired): Terraform creates it once and
# leaves its document alone. The first document matches no credentials
# (none were issued before 1970); IAM needs at least one statement.
resource "aws_iam_policy" "session_revocations" {
  name        = var.session_revocation_policy_name
  description = "break-glass-access: denies sessions opened during a break-glass grant once it is revoked. Written by revoke-access; attach to the break-glass permission sets as a customer managed policy."
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "NoSessionsRevoked"
      Effect    = "Deny"
      Action    = "*"
      Resource  = "*"
      Condition = { DateLessThan = { "aws:TokenIssueTime" = "1970-01-01T00:00:00Z" } }
    }]
  })
  tags = var.tags

  lifecycle {
    ignore_changes = [policy]
  }
}

data "aws_iam_policy_document" "session_revocations" {
  statement {
    sid = "WriteTheSessionRevocationPolicy"
    actions = [
      "iam:GetPolicy",
      "iam:GetPolicyVersion",
      "iam:ListPolicyVersions",
      "iam:CreatePolicyVersion",
      "iam:DeletePolicyVersion",
    ]
    resources = [aws_iam_policy.session_revocations.arn]
  }
}

resource "aws_iam_role_policy" "session_revocations" {
  name   = "session-revocations"
  role   = aws_iam_role.audit.id
  policy = data.aws_iam_policy_document.session_revocations.json
}
