variable "name" {
  type        = string
  description = "Prefix for every resource this module creates."
  default     = "break-glass"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,30}$", var.name))
    error_message = "name must start with a letter and hold 2 to 31 letters, digits or hyphens."
  }
}

variable "image_uri" {
  type        = string
  description = "The break-glass-access container image in ECR (one image serves every function), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/break-glass-access:1.0.0."

  validation {
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/.+(:[^:]+|@sha256:[0-9a-f]{64})$", var.image_uri))
    error_message = "image_uri must be an ECR image URI with a tag or digest."
  }
}

variable "sso_instance_arn" {
  type        = string
  description = "The IAM Identity Center instance ARN (arn:aws:sso:::instance/ssoins-...)."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sso:::instance/ssoins-[a-zA-Z0-9]+$", var.sso_instance_arn))
    error_message = "sso_instance_arn must look like arn:aws:sso:::instance/ssoins-..."
  }
}

variable "identity_store_id" {
  type        = string
  description = "The Identity Center instance's identity store id (d-...)."

  validation {
    condition     = can(regex("^d-[0-9a-f]{10}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.identity_store_id))
    error_message = "identity_store_id must look like d-1234567890."
  }
}

variable "allowed_account_ids" {
  type        = list(string)
  description = "Accounts that may be broken into."

  validation {
    condition     = length(var.allowed_account_ids) > 0 && alltrue([for a in var.allowed_account_ids : can(regex("^[0-9]{12}$", a))])
    error_message = "allowed_account_ids must hold at least one 12-digit account id."
  }
}

variable "allowed_permission_set_arns" {
  type        = list(string)
  description = "Permission sets that may be granted; they must belong to sso_instance_arn."

  validation {
    condition     = length(var.allowed_permission_set_arns) > 0 && alltrue([for p in var.allowed_permission_set_arns : can(regex("^arn:aws[a-z-]*:sso:::permissionSet/ssoins-[a-zA-Z0-9]+/ps-[a-zA-Z0-9]+$", p))])
    error_message = "allowed_permission_set_arns must hold at least one arn:aws:sso:::permissionSet/ssoins-.../ps-... ARN."
  }
}

variable "allowed_slack_team_ids" {
  type        = list(string)
  description = "Our Slack workspaces (team ids, T...). A click is only ours when every workspace id it carries is on this list, and only full members of these workspaces may break glass. Required: there is no default."

  validation {
    condition     = length(var.allowed_slack_team_ids) > 0 && alltrue([for t in var.allowed_slack_team_ids : can(regex("^T[A-Z0-9]{1,31}$", t))])
    error_message = "allowed_slack_team_ids must hold at least one Slack team id such as T012AB3CD."
  }
}

variable "allowed_slack_enterprise_ids" {
  type        = list(string)
  description = "Enterprise Grid only: our organisation ids (E...). Unset (null, the default), any click or account that names an organisation is refused. An empty list is refused."
  default     = null

  validation {
    condition     = var.allowed_slack_enterprise_ids == null || try(length(var.allowed_slack_enterprise_ids) > 0 && alltrue([for e in var.allowed_slack_enterprise_ids : can(regex("^E[A-Z0-9]{1,31}$", e))]), false)
    error_message = "allowed_slack_enterprise_ids must be null or hold at least one Slack enterprise id such as E012AB3CD."
  }
}

variable "allowed_slack_user_ids" {
  type        = list(string)
  description = "Slack user ids (U... or W...) allowed to break glass. Unset (null, the default) means any full member of allowed_slack_team_ids; guests, members of other workspaces (Slack Connect), bots and deactivated accounts are always refused. An empty list is refused, never read as everyone."
  default     = null

  validation {
    condition     = var.allowed_slack_user_ids == null || try(length(var.allowed_slack_user_ids) > 0 && alltrue([for u in var.allowed_slack_user_ids : can(regex("^[UW][A-Z0-9]{1,31}$", u))]), false)
    error_message = "allowed_slack_user_ids must be null (any full member) or hold at least one Slack user id such as U012AB3CD."
  }
}

variable "slack_app_id" {
  type        = string
  description = "The Slack app's id (A...). When set, clicks must say they came through this app (api_app_id); Block Kit payloads do, legacy attachments do not, so leave it null if your messages use attachments."
  default     = null

  validation {
    condition     = var.slack_app_id == null || can(regex("^A[A-Z0-9]{1,31}$", var.slack_app_id))
    error_message = "slack_app_id must be null or a Slack app id such as A012AB3CD."
  }
}

variable "default_duration_minutes" {
  type        = number
  description = "How long access lasts when the button does not say."
  default     = 60

  validation {
    condition     = var.default_duration_minutes >= 1 && var.default_duration_minutes <= 720 && floor(var.default_duration_minutes) == var.default_duration_minutes
    error_message = "default_duration_minutes must be a whole number from 1 to 720."
  }
}

variable "max_duration_minutes" {
  type        = number
  description = "The longest access a button may ask for."
  default     = 240

  validation {
    condition     = var.max_duration_minutes >= 1 && var.max_duration_minutes <= 720 && floor(var.max_duration_minutes) == var.max_duration_minutes
    error_message = "max_duration_minutes must be a whole number from 1 to 720 (Identity Center's longest session)."
  }
}

variable "extend_minutes" {
  type        = number
  description = "How much later the Extend button (in the thread and App Home) moves the end of a grant's hold. An extension past the request time plus max_duration_minutes is refused, not clamped."
  default     = 60
  nullable    = false

  # Terraform >= 1.9: a validation may read another variable.
  validation {
    condition     = var.extend_minutes >= 1 && var.extend_minutes <= 1440 && floor(var.extend_minutes) == var.extend_minutes
    error_message = "extend_minutes must be a whole number from 1 to 1440."
  }
  validation {
    condition     = var.extend_minutes <= var.max_duration_minutes
    error_message = "extend_minutes must not be more than max_duration_minutes: every extension would be refused."
  }
}

variable "require_reason" {
  type        = bool
  description = "true: the seed message's button opens the /break-glass modal (prefilled with its account and permission set), so every request carries a reason; false (the default): a click starts at once with the default duration, as before."
  default     = false
  nullable    = false
}

variable "admin_slack_user_ids" {
  type        = list(string)
  description = "Slack user ids (U... or W...) who may end or extend anyone's grant, besides its requester. Empty (the default): only the requester."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for u in var.admin_slack_user_ids : can(regex("^[UW][A-Z0-9]{2,}$", u))])
    error_message = "admin_slack_user_ids must be Slack user ids such as U012AB3CD."
  }
}

variable "break_glass_channel" {
  type        = string
  description = "Slack channel id (C... or G...) where requests made through the modal are posted, their thread telling the story; App Home's Break glass button has no channel of its own. Null (the default): the channel /break-glass was typed in."
  default     = null

  validation {
    condition     = var.break_glass_channel == null || can(regex("^[CG][A-Z0-9]{2,}$", var.break_glass_channel))
    error_message = "break_glass_channel must be null or a Slack channel id such as C012AB3CD."
  }
}

variable "account_names" {
  type        = map(string)
  description = "Names shown for accounts in the modal and App Home, by 12-digit account id, e.g. { \"123456789012\" = \"Production\" }. Accounts without a name show their id."
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for id, name in var.account_names : can(regex("^[0-9]{12}$", id)) && can(regex("^[^,=]{1,64}$", name))])
    error_message = "account_names must map 12-digit account ids to names of 1 to 64 characters without \",\" or \"=\"."
  }
}

variable "identity_lookup" {
  type        = string
  description = "How a Slack e-mail is matched in the identity store: email (emails.value, then userName) or username (userName only)."
  default     = "email"

  validation {
    condition     = contains(["email", "username"], var.identity_lookup)
    error_message = "identity_lookup must be email or username."
  }
}

variable "cloudtrail_regions" {
  type        = list(string)
  description = "Regions whose CloudTrail the report searches; empty means this region plus us-east-1."
  default     = []

  validation {
    condition     = alltrue([for r in var.cloudtrail_regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "cloudtrail_regions must be region names such as eu-west-1."
  }
}

variable "cloudtrail_delay_minutes" {
  type        = number
  description = "How long the report waits for CloudTrail after the last session can have ended."
  default     = 15

  validation {
    condition     = var.cloudtrail_delay_minutes >= 0 && var.cloudtrail_delay_minutes <= 1440
    error_message = "cloudtrail_delay_minutes must be from 0 to 1440."
  }
}

variable "audit_role_name" {
  type        = string
  description = "Name of the audit role (modules/target-account) deployed in each target account: the report reads CloudTrail through it, revoke-access ends sessions through it. Empty: the report reads this account's CloudTrail only, and sessions are not ended."
  default     = ""

  validation {
    condition     = var.audit_role_name == "" || can(regex("^[\\w+=,.@-]{1,64}$", var.audit_role_name))
    error_message = "audit_role_name must be an IAM role name."
  }
}

variable "end_sessions_on_revoke" {
  type        = bool
  description = "With an audit role: on revoke, end the sessions opened during the grant (a Deny in each target account's session revocation policy). false: they last the permission set's session duration, and the thread says so."
  default     = true
}

variable "session_revocation_policy_name" {
  type        = string
  description = "The session revocation policy's name in every target account (modules/target-account's session_revocation_policy_name)."
  default     = "break-glass-session-revocations"

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,128}$", var.session_revocation_policy_name))
    error_message = "session_revocation_policy_name must be an IAM policy name."
  }
}

variable "report_sender" {
  type        = string
  description = "SES-verified address the report is sent from."

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.report_sender))
    error_message = "report_sender must be an e-mail address."
  }
}

variable "report_recipients" {
  type        = list(string)
  description = "Who receives every report (a security mailbox, say)."

  validation {
    condition     = alltrue([for r in var.report_recipients : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", r))])
    error_message = "report_recipients must be e-mail addresses."
  }
}

variable "report_cc_requester" {
  type        = bool
  description = "Also send the report to the engineer who broke glass."
  default     = false
}

variable "alert_slack_channel" {
  type        = string
  description = "Slack channel id that failed revokes and incomplete grants are posted to; empty for none."
  default     = ""

  validation {
    condition     = var.alert_slack_channel == "" || can(regex("^[CGD][A-Z0-9]+$", var.alert_slack_channel))
    error_message = "alert_slack_channel must be a Slack channel id such as C012AB3CD."
  }
}

variable "alert_email_addresses" {
  type        = list(string)
  description = "Addresses subscribed to the alert topic (they must confirm the subscription)."
  default     = []
}

variable "log_retention_days" {
  type        = number
  description = "How long function, API and state machine logs are kept."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "api_throttling" {
  type = object({
    burst_limit = number
    rate_limit  = number
  })
  description = "API Gateway stage throttling for the Slack endpoints (interactions, the slash command, events)."
  default = {
    burst_limit = 20
    rate_limit  = 10
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}

variable "reconcile_schedule" {
  type        = string
  description = "How often reconcile-access sweeps the grant ledger for break-glass assignments nobody holds any more (an EventBridge Scheduler expression). Executions that end ABORTED, TIMED_OUT or FAILED trigger it at once as well."
  default     = "rate(10 minutes)"

  validation {
    condition     = can(regex("^rate\\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\\)$|^cron\\([^()]+\\)$", var.reconcile_schedule))
    error_message = "reconcile_schedule must be a schedule expression such as rate(10 minutes) or cron(0/10 * * * ? *)."
  }
}

variable "reconcile_min_age_minutes" {
  type        = number
  description = "How long after a holder joined the grant ledger reconcile-access believes Step Functions saying its execution ended (DescribeExecution is eventually consistent); an execution named by a status-change event is believed at once."
  default     = 15

  validation {
    condition     = var.reconcile_min_age_minutes >= 1 && var.reconcile_min_age_minutes <= 1440 && floor(var.reconcile_min_age_minutes) == var.reconcile_min_age_minutes
    error_message = "reconcile_min_age_minutes must be a whole number from 1 to 1440."
  }
}

variable "sso_region" {
  type        = string
  description = "IAM Identity Center's home region, where its APIs (sso-admin, identitystore) answer. Null (the default) means the region this module is deployed in."
  default     = null

  validation {
    condition     = var.sso_region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.sso_region))
    error_message = "sso_region must be null or a region name such as eu-west-1."
  }
}

variable "identity_store_account_id" {
  type        = string
  description = "The account that owns the identity store (the organisation's management account, which owns the Identity Center instance). Null (the default) allows the identity store named by identity_store_id in any account: a delegated administrator deploys this module in another account than the store's."
  default     = null

  validation {
    condition     = var.identity_store_account_id == null || can(regex("^[0-9]{12}$", var.identity_store_account_id))
    error_message = "identity_store_account_id must be null or a 12-digit account id."
  }
}

variable "management_account_id" {
  type        = string
  description = "The organisation's management account. When set and listed in allowed_account_ids, allow_management_account must be true. Terraform cannot find it without organizations:DescribeOrganization, so when it is null nothing checks: never list the management account then."
  default     = null

  validation {
    condition     = var.management_account_id == null || can(regex("^[0-9]{12}$", var.management_account_id))
    error_message = "management_account_id must be null or a 12-digit account id."
  }
}

variable "allow_management_account" {
  type        = bool
  description = "Opt in to breaking glass into the management account (management_account_id, listed in allowed_account_ids). Only a deployment in the management account itself can: a delegated administrator cannot assign there, and assigning there needs IAM rights on its aws-reserved SSO roles, which this adds."
  default     = false

  # Terraform >= 1.9: a validation may read other variables and data. Every
  # check across the management account variables is here (two variables
  # checking each other would be a cycle).
  validation {
    condition     = !var.allow_management_account || var.management_account_id != null
    error_message = "allow_management_account needs management_account_id."
  }

  validation {
    condition     = var.allow_management_account || var.management_account_id == null || !contains(var.allowed_account_ids, coalesce(var.management_account_id, "none"))
    error_message = "allowed_account_ids lists the management account (management_account_id): set allow_management_account = true to mean it, and deploy in the management account itself."
  }

  # Identity Center refuses a delegated administrator's assignments in the
  # management account: only a deployment there can use the opt-in.
  validation {
    condition     = !var.allow_management_account || var.management_account_id == data.aws_caller_identity.current.account_id
    error_message = "allow_management_account = true works only when this module is deployed in the management account (management_account_id): a delegated administrator cannot assign there."
  }
}

variable "architecture" {
  type        = string
  description = "The functions' instruction set: x86_64 (the default) or arm64. The image must be built for it (docker build --platform linux/arm64)."
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}
