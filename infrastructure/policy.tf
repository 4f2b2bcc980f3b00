# The break-glass policy's rules: who may break into what, by Identity
# Center group or e-mail. Rendered into an SSM parameter (encrypted with the
# module's key) that access-requested and grant-access read at cold start
# and again after a minute (POLICY_PARAMETER_NAME). Left unset (null), no
# parameter exists and the allow lists decide, as before rules.

variable "policy_rules" {
  type = list(object({
    name                 = string
    accounts             = list(string)
    permission_sets      = list(string)
    groups               = optional(list(string), [])
    users                = optional(list(string), [])
    max_duration_minutes = number
    require_reason       = optional(bool, false)
    notify_channel       = optional(string)
  }))
  description = "Ordered rules; a request is allowed when one covers it. accounts: 12-digit ids or \"*\"; permission_sets: ARNs or names in sso_instance_arn's instance; groups (Identity Center display names or ids) and/or users (e-mails); max_duration_minutes up to max_duration_minutes; require_reason (button clicks carry none, so such a rule does not cover them); notify_channel (a Slack channel id that is told of each grant). null (the default): the allow lists decide. allowed_account_ids and allowed_permission_set_arns stay the IAM scope of the assignments, so they must include what the rules name."
  default     = null

  validation {
    condition     = var.policy_rules == null || length(var.policy_rules == null ? [] : var.policy_rules) > 0
    error_message = "policy_rules must list at least one rule; leave it null to use the allow lists."
  }
  validation {
    condition     = var.policy_rules == null || length(distinct([for r in(var.policy_rules == null ? [] : var.policy_rules) : r.name])) == length(var.policy_rules == null ? [] : var.policy_rules)
    error_message = "policy_rules names must be unique."
  }
  validation {
    condition     = alltrue([for r in(var.policy_rules == null ? [] : var.policy_rules) : can(regex("^[A-Za-z0-9_.-]{1,64}$", r.name))])
    error_message = "Each rule's name must be 1 to 64 letters, digits, '_', '.' or '-'."
  }
  validation {
    condition     = alltrue([for r in(var.policy_rules == null ? [] : var.policy_rules) : length(r.accounts) > 0 && alltrue([for a in r.accounts : a == "*" || can(regex("^[0-9]{12}$", a))])])
    error_message = "Each rule's accounts must list 12-digit account ids or \"*\", at least one."
  }
  validation {
    condition     = alltrue([for r in(var.policy_rules == null ? [] : var.policy_rules) : length(r.permission_sets) > 0])
    error_message = "Each rule must name at least one permission set."
  }
  validation {
    condition     = alltrue([for r in(var.policy_rules == null ? [] : var.policy_rules) : length(r.groups) + length(r.users) > 0])
    error_message = "Each rule must name groups or users: a rule for nobody in particular would widen access."
  }
  validation {
    condition     = alltrue([for r in(var.policy_rules == null ? [] : var.policy_rules) : r.max_duration_minutes >= 1 && r.max_duration_minutes <= 720 && floor(r.max_duration_minutes) == r.max_duration_minutes])
    error_message = "Each rule's max_duration_minutes must be a whole number from 1 to 720 (and at most max_duration_minutes)."
  }
  validation {
    condition     = alltrue([for r in(var.policy_rules == null ? [] : var.policy_rules) : r.notify_channel == null || can(regex("^[CG][A-Z0-9]+$", r.notify_channel))])
    error_message = "notify_channel must be a Slack channel id (C... or G...)."
  }
}

locals {
  policy_rules_enabled = var.policy_rules != null
  # The document the functions read (crates/core/src/rules.rs), field for
  # field; a missing notify_channel is left out.
  policy_document = local.policy_rules_enabled ? jsonencode({
    rules = [for r in var.policy_rules : merge(
      {
        name                 = r.name
        accounts             = r.accounts
        permission_sets      = r.permission_sets
        groups               = r.groups
        users                = r.users
        max_duration_minutes = r.max_duration_minutes
        require_reason       = r.require_reason
      },
      r.notify_channel == null ? {} : { notify_channel = r.notify_channel },
    )]
  }) : null
  policy_parameter_name = local.policy_rules_enabled ? aws_ssm_parameter.policy[0].name : null
}

resource "aws_ssm_parameter" "policy" {
  count       = local.policy_rules_enabled ? 1 : 0
  name        = "/${var.name}/policy"
  description = "break-glass-access: who may break into what (read by access-requested and grant-access)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  # Standard parameters hold 4 KB; a long policy needs the advanced tier.
  tier  = length(local.policy_document) > 4096 ? "Advanced" : "Standard"
  value = local.policy_document
  tags  = var.tags

  lifecycle {
    precondition {
      condition     = alltrue([for r in var.policy_rules : r.max_duration_minutes <= var.max_duration_minutes])
      error_message = "A rule's max_duration_minutes is longer than max_duration_minutes: access-requested would refuse to start."
    }
  }
}

# access-requested decides by the rules: it reads the policy, the clicker's
# Slack profile (with the bot token, which iam.tf always allows), their
# Identity Store user and groups, and the clicked permission set's name (for
# rules that name one by name).
data "aws_iam_policy_document" "policy_rules_access_requested" {
  count = local.policy_rules_enabled ? 1 : 0
  statement {
    sid       = "ReadPolicy"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.policy[0].arn]
  }
  statement {
    sid       = "PolicyKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid = "FindRequester"
    actions = [
      "identitystore:DescribeUser",
      "identitystore:GetGroupId",
      "identitystore:GetUserId",
      "identitystore:ListGroupMembershipsForMember",
    ]
    resources = local.policy_identity_store_scope
  }
  statement {
    sid       = "PermissionSetNames"
    actions   = ["sso:DescribePermissionSet"]
    resources = [var.sso_instance_arn, "arn:${local.partition}:sso:::permissionSet/${local.sso_instance_id}/*"]
  }
}

# grant-access checks the rules again with fresh group membership.
data "aws_iam_policy_document" "policy_rules_grant_access" {
  count = local.policy_rules_enabled ? 1 : 0
  statement {
    sid       = "ReadPolicy"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.policy[0].arn]
  }
  statement {
    sid       = "PolicyKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "Groups"
    actions   = ["identitystore:GetGroupId", "identitystore:ListGroupMembershipsForMember"]
    resources = local.policy_identity_store_scope
  }
}

locals {
  sso_instance_id = element(split("/", var.sso_instance_arn), 1)
  policy_identity_store_scope = [
    "arn:${local.partition}:identitystore::${local.account}:identitystore/${var.identity_store_id}",
    "arn:${local.partition}:identitystore:::user/*",
    "arn:${local.partition}:identitystore:::group/*",
    "arn:${local.partition}:identitystore:::membership/*",
  ]
}

resource "aws_iam_role_policy" "policy_rules" {
  for_each = local.policy_rules_enabled ? toset(["access-requested", "grant-access"]) : toset([])
  name     = "${var.name}-${each.key}-policy-rules"
  role     = aws_iam_role.function[each.key].id
  policy = {
    "access-requested" = one(data.aws_iam_policy_document.policy_rules_access_requested[*].json)
    "grant-access"     = one(data.aws_iam_policy_document.policy_rules_grant_access[*].json)
  }[each.key]
}
