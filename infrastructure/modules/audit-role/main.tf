# Deploy in each target account: lets report-on-access read this account's
# CloudTrail management events, and nothing else.
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [var.report_role_arn]
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
