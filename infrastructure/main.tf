data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.region
  partition = data.aws_partition.current.partition

  state_machine_name = "${var.name}-access"
  state_machine_arn  = "arn:${local.partition}:states:${local.region}:${local.account}:stateMachine:${local.state_machine_name}"
  executions_arn     = "arn:${local.partition}:states:${local.region}:${local.account}:execution:${local.state_machine_name}:*"

  slack_api_url = "https://slack.com/api"

  # Every variable each function's Config reads, and nothing else
  # (checked by crates/contract-tests). A null value is left out of the
  # function's environment (lambda.tf): that is how an optional allow list
  # says "unset", because a set-but-empty one stops the function, and how
  # SSO_REGION (Identity Center's home region) defaults to the functions' own.
  slack_user_ids       = var.allowed_slack_user_ids == null ? null : join(",", var.allowed_slack_user_ids)
  slack_enterprise_ids = var.allowed_slack_enterprise_ids == null ? null : join(",", var.allowed_slack_enterprise_ids)
  # Optional lists and maps with an empty default: empty means unset.
  admin_slack_user_ids = length(var.admin_slack_user_ids) == 0 ? null : join(",", var.admin_slack_user_ids)
  # "123456789012=Production,210987654321=Staging", sorted by account id.
  account_names = length(var.account_names) == 0 ? null : join(",", [for id in sort(keys(var.account_names)) : "${id}=${var.account_names[id]}"])

  # revoke-access ends sessions (and reconcile-access cleans up after it)
  # through the audit role.
  ends_sessions = var.audit_role_name != "" && var.end_sessions_on_revoke

  environment = {
    "access-requested" = {
      STATE_MACHINE_ARN            = local.state_machine_arn
      SSO_INSTANCE_ARN             = var.sso_instance_arn
      ALLOWED_ACCOUNT_IDS          = join(",", var.allowed_account_ids)
      ALLOWED_PERMISSION_SET_ARNS  = join(",", var.allowed_permission_set_arns)
      ALLOWED_SLACK_TEAM_IDS       = join(",", var.allowed_slack_team_ids)
      ALLOWED_SLACK_ENTERPRISE_IDS = local.slack_enterprise_ids
      ALLOWED_SLACK_USER_IDS       = local.slack_user_ids
      SLACK_APP_ID                 = var.slack_app_id
      DEFAULT_DURATION_MINUTES     = tostring(var.default_duration_minutes)
      MAX_DURATION_MINUTES         = tostring(var.max_duration_minutes)
      SLACK_SIGNING_SECRET_ARN     = aws_secretsmanager_secret.signing_secret.arn
      # The policy's rules (policy.tf), and what checking them needs.
      POLICY_PARAMETER_NAME = local.policy_parameter_name
      IDENTITY_STORE_ID     = var.identity_store_id
      IDENTITY_LOOKUP       = var.identity_lookup
      SLACK_API_URL         = local.slack_api_url
      SSO_REGION            = var.sso_region
      # Control from Slack: the modal (views.open), App Home (views.publish)
      # and the thread's End and Extend buttons, which read the grant ledger
      # and wake the hold (a task token).
      SLACK_BOT_TOKEN_ARN  = aws_secretsmanager_secret.bot_token.arn
      GRANT_LEDGER_TABLE   = aws_dynamodb_table.ledger.name
      ADMIN_SLACK_USER_IDS = local.admin_slack_user_ids
      EXTEND_MINUTES       = tostring(var.extend_minutes)
      REQUIRE_REASON       = tostring(var.require_reason)
      BREAK_GLASS_CHANNEL  = var.break_glass_channel
      ACCOUNT_NAMES        = local.account_names
    }
    "grant-access" = {
      SSO_INSTANCE_ARN             = var.sso_instance_arn
      SSO_REGION                   = var.sso_region
      IDENTITY_STORE_ID            = var.identity_store_id
      GRANT_LEDGER_TABLE           = aws_dynamodb_table.ledger.name
      IDENTITY_LOOKUP              = var.identity_lookup
      ALLOWED_SLACK_TEAM_IDS       = join(",", var.allowed_slack_team_ids)
      ALLOWED_SLACK_ENTERPRISE_IDS = local.slack_enterprise_ids
      SLACK_BOT_TOKEN_ARN          = aws_secretsmanager_secret.bot_token.arn
      SLACK_API_URL                = local.slack_api_url
      POLICY_PARAMETER_NAME        = local.policy_parameter_name
    }
    # The hold (the state machine's callback task): it keeps the hold in the
    # grant's ledger item, which End and Extend (access-requested) change.
    "hold-access" = {
      GRANT_LEDGER_TABLE = aws_dynamodb_table.ledger.name
      # break-glass-local's scaled time only: unset here, real time.
      HOLD_TIME_SCALE = null
    }
    "revoke-access" = {
      SSO_INSTANCE_ARN         = var.sso_instance_arn
      SSO_REGION               = var.sso_region
      GRANT_LEDGER_TABLE       = aws_dynamodb_table.ledger.name
      SLACK_BOT_TOKEN_ARN      = aws_secretsmanager_secret.bot_token.arn
      SLACK_API_URL            = local.slack_api_url
      CLOUDTRAIL_DELAY_MINUTES = tostring(var.cloudtrail_delay_minutes)
      # Ending sessions writes through the audit role: without one there is
      # nothing to write through, and the variables stay unset.
      AUDIT_ROLE_NAME                = var.audit_role_name == "" ? null : var.audit_role_name
      END_SESSIONS_ON_REVOKE         = var.audit_role_name == "" ? null : tostring(var.end_sessions_on_revoke)
      SESSION_REVOCATION_POLICY_NAME = var.audit_role_name == "" ? null : var.session_revocation_policy_name
    }
    "report-on-access" = {
      REPORT_SOURCE        = var.report_source
      CLOUDTRAIL_LOG_GROUP = var.cloudtrail_log_group
      STATE_MACHINE_ARN    = local.state_machine_arn
      CLOUDTRAIL_REGIONS   = join(",", var.cloudtrail_regions)
      AUDIT_ROLE_NAME      = var.audit_role_name
      REPORT_SENDER        = var.report_sender
      REPORT_RECIPIENTS    = join(",", var.report_recipients)
      REPORT_CC_REQUESTER  = tostring(var.report_cc_requester)
      SLACK_BOT_TOKEN_ARN  = aws_secretsmanager_secret.bot_token.arn
      SLACK_API_URL        = local.slack_api_url
      ALERT_SLACK_CHANNEL  = var.alert_slack_channel
      ALERT_TOPIC_ARN      = aws_sns_topic.alerts.arn
    }
    # The report-on-access binary, answering the state machine's Catch
    # states only (notify.rs): the alert channels, the Slack token, and what
    # its Config requires to start (the report's sender and recipients,
    # which notifying never uses). Nothing to read CloudTrail with.
    "notify" = {
      REPORT_SENDER       = var.report_sender
      REPORT_RECIPIENTS   = join(",", var.report_recipients)
      REPORT_CC_REQUESTER = tostring(var.report_cc_requester)
      SLACK_BOT_TOKEN_ARN = aws_secretsmanager_secret.bot_token.arn
      SLACK_API_URL       = local.slack_api_url
      ALERT_SLACK_CHANNEL = var.alert_slack_channel
      ALERT_TOPIC_ARN     = aws_sns_topic.alerts.arn
    }
    "reconcile-access" = {
      SSO_INSTANCE_ARN            = var.sso_instance_arn
      SSO_REGION                  = var.sso_region
      GRANT_LEDGER_TABLE          = aws_dynamodb_table.ledger.name
      STATE_MACHINE_ARN           = local.state_machine_arn
      ALLOWED_ACCOUNT_IDS         = join(",", var.allowed_account_ids)
      ALLOWED_PERMISSION_SET_ARNS = join(",", var.allowed_permission_set_arns)
      SLACK_BOT_TOKEN_ARN         = aws_secretsmanager_secret.bot_token.arn
      SLACK_API_URL               = local.slack_api_url
      ALERT_SLACK_CHANNEL         = var.alert_slack_channel
      ALERT_TOPIC_ARN             = aws_sns_topic.alerts.arn
      RECONCILE_MIN_AGE_MINUTES   = tostring(var.reconcile_min_age_minutes)
      # Sweeps drop expired Denies from the session revocation policies.
      AUDIT_ROLE_NAME                = local.ends_sessions ? var.audit_role_name : null
      SESSION_REVOCATION_POLICY_NAME = local.ends_sessions ? var.session_revocation_policy_name : null
    }
  }

  # Time each job needs: the grant polls Identity Center for up to two
  # minutes, the report pages CloudTrail at 2 requests/s per region, the
  # reconciler stops picking up items after 200 s (RUN_BUDGET). Each key
  # is a function, its crate and its binary, except where `binary` says
  # otherwise.
  functions = {
    "access-requested" = { timeout = 10, memory = 256, concurrency = 20 }
    "grant-access"     = { timeout = 300, memory = 256, concurrency = 10 }
    "revoke-access"    = { timeout = 300, memory = 256, concurrency = 10 }
    # A ledger read and write per call: the hold's start and its wake-ups.
    "hold-access"      = { timeout = 30, memory = 256, concurrency = 10 }
    "report-on-access" = { timeout = 900, memory = 512, concurrency = 5 }
    # The state machine's alerts and notices: the report binary again, with
    # concurrency of its own, so an alert never waits for five 15-minute
    # reports to finish; a few Slack and SNS calls fit in 30 s.
    "notify" = { binary = "report-on-access", timeout = 30, memory = 256, concurrency = 5 }
    # One sweep at a time is plenty; two at once are safe (every ledger
    # write is conditional), just wasted.
    "reconcile-access" = { timeout = 300, memory = 256, concurrency = 2 }
  }
}
