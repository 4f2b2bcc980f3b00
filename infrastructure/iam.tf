data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = local.functions
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

locals {
  sso_accounts = [for a in var.allowed_account_ids : "arn:${local.partition}:sso:::account/${a}"]
  # Identity Center's assignment APIs authorise on the instance, the
  # permission set and the account together (global ARNs: no region, no
  # account).
  sso_scope = concat([var.sso_instance_arn], var.allowed_permission_set_arns, local.sso_accounts)
  # The identity store belongs to the account owning the instance (the
  # management account), not necessarily ours (a delegated administrator):
  # any account unless identity_store_account_id says which. The store id
  # names one store either way.
  identity_store_account = coalesce(var.identity_store_account_id, "*")

  # In the management account, Identity Center's service-linked role does not
  # create the AWSReservedSSO_ roles for the permission sets: whoever assigns
  # must (variables.tf: allow_management_account, only from the management
  # account itself). Its aws-reserved SSO roles and SAML provider only.
  management_assignable = var.allow_management_account && contains(var.allowed_account_ids, coalesce(var.management_account_id, "none"))
  management_sso_roles  = "arn:${local.partition}:iam::${coalesce(var.management_account_id, "none")}:role/aws-reserved/sso.amazonaws.com/*"
  management_sso_saml   = "arn:${local.partition}:iam::${coalesce(var.management_account_id, "none")}:saml-provider/AWSSSO_*"
  # Removing the last assignment of a permission set in an account removes
  # its role (and, with the last one, the SAML provider).
  management_cleanup = [
    "iam:GetRole", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:DetachRolePolicy",
    "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
  ]
  management_provisioning = concat(local.management_cleanup, [
    "iam:CreateRole", "iam:AttachRolePolicy", "iam:PutRolePolicy", "iam:UpdateRole", "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary",
  ])
}

# What every function needs: its own log group, X-Ray, the module's key.
data "aws_iam_policy_document" "common" {
  for_each = local.functions

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
  statement {
    sid       = "ModuleKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

# The grant ledger, for every function that keeps it (access-requested,
# grant-, hold-, revoke- and reconcile-access): a strongly consistent read
# and a conditional write of one item, on the table only (the open-items
# index, for Query, is granted where it is read). No dynamodb:LeadingKeys
# condition: the partition key names the Identity Center user, known only
# at run time, so it would have to allow every key. DynamoDB decrypts the
# table key with the caller's rights (the table is encrypted with the
# module's key; ModuleKey allows that too, this says why the ledger needs
# it); it generated that key once, at creation, so no kms:GenerateDataKey.
data "aws_iam_policy_document" "ledger" {
  statement {
    sid       = "Ledger"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.ledger.arn]
  }
  statement {
    sid       = "LedgerKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:dynamodb:tableName"
      values   = [aws_dynamodb_table.ledger.name]
    }
  }
}

# access-requested: start this state machine, look at its executions, read
# the signing secret; for control from Slack, read the bot token (views.open,
# views.publish, the thread), the grant ledger (App Home's active grants, End
# and Extend) and permission set names (the modal), and wake the hold.
data "aws_iam_policy_document" "access_requested" {
  source_policy_documents = [data.aws_iam_policy_document.common["access-requested"].json, data.aws_iam_policy_document.ledger.json]
  statement {
    sid       = "StartExecution"
    actions   = ["states:StartExecution"]
    resources = [local.state_machine_arn]
  }
  statement {
    sid       = "DescribeExecution"
    actions   = ["states:DescribeExecution"]
    resources = [local.executions_arn]
  }
  statement {
    sid       = "SigningSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.signing_secret.arn]
  }
  # The state machine is encrypted with the module's key (step_functions.tf):
  # StartExecution encrypts the input with a data key generated for the
  # caller, and DescribeExecution decrypts; only for this state machine.
  statement {
    sid       = "StateMachineKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.state_machine_arn]
    }
  }
  statement {
    sid       = "BotToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.bot_token.arn]
  }
  # The grant ledger (the shared document), plus the open-items index: a
  # user's active grants for App Home.
  statement {
    sid       = "OpenItems"
    actions   = ["dynamodb:Query"]
    resources = ["${aws_dynamodb_table.ledger.arn}/index/open-items"]
  }
  # End now and Extend wake the hold (hold-access's callback task) with its
  # task token. SendTaskSuccess has no resource-level permissions (IAM
  # authorises it on "*" only); the token itself names the one task.
  statement {
    sid       = "WakeHold"
    actions   = ["states:SendTaskSuccess"]
    resources = ["*"]
  }
  # The modal lists the allowed permission sets by name (as grant-access
  # describes them: the instance and the permission sets).
  statement {
    sid       = "PermissionSetNames"
    actions   = ["sso:DescribePermissionSet"]
    resources = concat([var.sso_instance_arn], var.allowed_permission_set_arns)
  }
}

# grant-access: assign (and, when a create cannot be confirmed, remove again)
# the allowed permission sets in the allowed accounts; find the user; record
# its hold in the grant ledger.
data "aws_iam_policy_document" "grant_access" {
  source_policy_documents = [data.aws_iam_policy_document.common["grant-access"].json, data.aws_iam_policy_document.ledger.json]
  statement {
    sid = "Assignments"
    actions = [
      "sso:CreateAccountAssignment",
      "sso:DeleteAccountAssignment",
      "sso:DescribeAccountAssignmentCreationStatus",
      "sso:DescribeAccountAssignmentDeletionStatus",
      "sso:DescribePermissionSet",
      "sso:ListAccountAssignments",
    ]
    resources = local.sso_scope
  }
  dynamic "statement" {
    for_each = local.management_assignable ? [1] : []
    content {
      sid       = "ManagementAccountSsoRoles"
      actions   = local.management_provisioning
      resources = [local.management_sso_roles]
    }
  }
  dynamic "statement" {
    for_each = local.management_assignable ? [1] : []
    content {
      sid       = "ManagementAccountSsoSaml"
      actions   = ["iam:GetSAMLProvider", "iam:CreateSAMLProvider", "iam:UpdateSAMLProvider", "iam:DeleteSAMLProvider"]
      resources = [local.management_sso_saml]
    }
  }
  statement {
    sid     = "FindUser"
    actions = ["identitystore:GetUserId", "identitystore:DescribeUser"]
    resources = [
      "arn:${local.partition}:identitystore::${local.identity_store_account}:identitystore/${var.identity_store_id}",
      "arn:${local.partition}:identitystore:::user/*",
    ]
  }
  statement {
    sid       = "BotToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.bot_token.arn]
  }
}

# revoke-access: give up its hold in the grant ledger; as the last holder,
# remove and verify.
data "aws_iam_policy_document" "revoke_access" {
  source_policy_documents = [data.aws_iam_policy_document.common["revoke-access"].json, data.aws_iam_policy_document.ledger.json]
  statement {
    sid = "Assignments"
    actions = [
      "sso:DeleteAccountAssignment",
      "sso:DescribeAccountAssignmentDeletionStatus",
      "sso:ListAccountAssignments",
    ]
    resources = local.sso_scope
  }
  dynamic "statement" {
    for_each = local.management_assignable ? [1] : []
    content {
      sid       = "ManagementAccountSsoRoles"
      actions   = local.management_cleanup
      resources = [local.management_sso_roles]
    }
  }
  dynamic "statement" {
    for_each = local.management_assignable ? [1] : []
    content {
      sid       = "ManagementAccountSsoSaml"
      actions   = ["iam:GetSAMLProvider", "iam:DeleteSAMLProvider"]
      resources = [local.management_sso_saml]
    }
  }
  statement {
    sid       = "BotToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.bot_token.arn]
  }
  # Ending sessions: the audit role in the allowed accounts, which may write
  # the session revocation policy there and nothing else.
  dynamic "statement" {
    for_each = local.ends_sessions ? [1] : []
    content {
      sid       = "AuditRole"
      actions   = ["sts:AssumeRole"]
      resources = [for a in var.allowed_account_ids : "arn:${local.partition}:iam::${a}:role/${var.audit_role_name}"]
    }
  }
}

# hold-access: the hold, a callback task; it reads and writes the grant's
# ledger item (End and Extend change the same item).
data "aws_iam_policy_document" "hold_access" {
  source_policy_documents = [data.aws_iam_policy_document.common["hold-access"].json, data.aws_iam_policy_document.ledger.json]
}

# report-on-access: read CloudTrail (through the audit role in each target
# account, or here when there is none), send the report, raise alerts.
data "aws_iam_policy_document" "report_on_access" {
  source_policy_documents = [data.aws_iam_policy_document.common["report-on-access"].json]
  dynamic "statement" {
    for_each = var.audit_role_name == "" ? [] : [1]
    content {
      sid       = "AuditRole"
      actions   = ["sts:AssumeRole"]
      resources = [for a in local.audit_role_accounts : "arn:${local.partition}:iam::${a}:role/${var.audit_role_name}"]
    }
  }
  # report_source = logs-insights on a log group read with this role
  # (report_source.tf): start queries on that log group only; reading and
  # stopping a query by its id has no resource to scope to.
  dynamic "statement" {
    for_each = local.logs_directly ? [1] : []
    content {
      sid       = "LogsInsightsStart"
      actions   = ["logs:StartQuery"]
      resources = [local.log_group_arn, "${local.log_group_arn}:*"]
    }
  }
  dynamic "statement" {
    for_each = local.logs_directly ? [1] : []
    content {
      sid       = "LogsInsightsResults"
      actions   = ["logs:GetQueryResults", "logs:StopQuery"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = var.audit_role_name == "" ? [1] : []
    content {
      sid       = "OwnCloudTrail"
      actions   = ["cloudtrail:LookupEvents"]
      resources = ["*"]
    }
  }
  statement {
    sid       = "SendReport"
    actions   = ["ses:SendEmail"]
    resources = ["arn:${local.partition}:ses:${local.region}:${local.account}:identity/*"]
    condition {
      test     = "StringEquals"
      variable = "ses:FromAddress"
      values   = [var.report_sender]
    }
  }
  statement {
    sid       = "Alerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }
  statement {
    sid       = "AlertKey"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
  statement {
    sid       = "BotToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.bot_token.arn]
  }
}

# reconcile-access: find the grant ledger's open items, finish the removals
# nobody finished (as revoke-access does), note assignments the ledger does
# not know, ask Step Functions whether holders still run, raise alerts.
data "aws_iam_policy_document" "reconcile_access" {
  source_policy_documents = [data.aws_iam_policy_document.common["reconcile-access"].json, data.aws_iam_policy_document.ledger.json]
  # Sweeps drop expired Denies from the session revocation policies, as
  # the audit role in the allowed accounts.
  dynamic "statement" {
    for_each = local.ends_sessions ? [1] : []
    content {
      sid       = "AuditRole"
      actions   = ["sts:AssumeRole"]
      resources = [for a in var.allowed_account_ids : "arn:${local.partition}:iam::${a}:role/${var.audit_role_name}"]
    }
  }
  statement {
    sid = "Assignments"
    actions = [
      "sso:DeleteAccountAssignment",
      "sso:DescribeAccountAssignmentDeletionStatus",
      "sso:ListAccountAssignments",
    ]
    resources = local.sso_scope
  }
  dynamic "statement" {
    for_each = local.management_assignable ? [1] : []
    content {
      sid       = "ManagementAccountSsoRoles"
      actions   = local.management_cleanup
      resources = [local.management_sso_roles]
    }
  }
  dynamic "statement" {
    for_each = local.management_assignable ? [1] : []
    content {
      sid       = "ManagementAccountSsoSaml"
      actions   = ["iam:GetSAMLProvider", "iam:DeleteSAMLProvider"]
      resources = [local.management_sso_saml]
    }
  }
  # The grant ledger (the shared document), plus the open-items index.
  statement {
    sid       = "OpenItems"
    actions   = ["dynamodb:Query"]
    resources = ["${aws_dynamodb_table.ledger.arn}/index/open-items"]
  }
  statement {
    sid       = "DescribeExecution"
    actions   = ["states:DescribeExecution"]
    resources = [local.executions_arn]
  }
  statement {
    sid       = "Alerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }
  statement {
    sid       = "AlertKey"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
  statement {
    sid       = "BotToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.bot_token.arn]
  }
}

# notify (the report-on-access binary for the state machine's Catch
# states): tell the requester's thread and the alert channel (Slack), publish
# the alert (SNS). No CloudTrail, no e-mail.
data "aws_iam_policy_document" "notify" {
  source_policy_documents = [data.aws_iam_policy_document.common["notify"].json]
  statement {
    sid       = "Alerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }
  statement {
    sid       = "AlertKey"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sns:topicArn"
      values   = [aws_sns_topic.alerts.arn]
    }
  }
  statement {
    sid       = "BotToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.bot_token.arn]
  }
}

locals {
  function_policies = {
    "access-requested" = data.aws_iam_policy_document.access_requested.json
    "grant-access"     = data.aws_iam_policy_document.grant_access.json
    "revoke-access"    = data.aws_iam_policy_document.revoke_access.json
    "hold-access"      = data.aws_iam_policy_document.hold_access.json
    "report-on-access" = data.aws_iam_policy_document.report_on_access.json
    "reconcile-access" = data.aws_iam_policy_document.reconcile_access.json
    "notify"           = data.aws_iam_policy_document.notify.json
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.function[each.key].id
  policy   = local.function_policies[each.key]
}

# The state machine may invoke only its task functions (hold-access both as
# a plain task and through lambda:invoke.waitForTaskToken, which invokes the
# same function ARN).
data "aws_iam_policy_document" "states_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "state_machine" {
  name               = "${var.name}-state-machine"
  assume_role_policy = data.aws_iam_policy_document.states_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "state_machine" {
  statement {
    sid     = "InvokeTasks"
    actions = ["lambda:InvokeFunction"]
    resources = [
      aws_lambda_function.this["grant-access"].arn,
      aws_lambda_function.this["revoke-access"].arn,
      aws_lambda_function.this["hold-access"].arn,
      aws_lambda_function.this["report-on-access"].arn,
      aws_lambda_function.this["notify"].arn,
    ]
  }
  statement {
    sid = "Logging"
    # Log delivery for Step Functions is configured account-wide by these
    # actions; they do not take resource ARNs.
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
    resources = ["*"]
  }
  # Its own definition and executions, encrypted with the module's key; and
  # the data key for delivering its (encrypted) logs.
  statement {
    sid       = "ModuleKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.state_machine_arn]
    }
  }
  statement {
    sid       = "LogDeliveryKey"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:*"]
    }
  }
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "${var.name}-state-machine"
  role   = aws_iam_role.state_machine.id
  policy = data.aws_iam_policy_document.state_machine.json
}
