# Where report-on-access reads CloudTrail: LookupEvents in each target
# account (the default; works everywhere, management events only, 2 calls
# per second per region), or CloudWatch Logs Insights over the log group an
# organisation trail delivers to (every account and region in one place,
# data events included).

variable "report_source" {
  type        = string
  description = "lookup-events (default) or logs-insights (then set cloudtrail_log_group)."
  default     = "lookup-events"

  validation {
    condition     = contains(["lookup-events", "logs-insights"], var.report_source)
    error_message = "report_source must be lookup-events or logs-insights."
  }
}

variable "cloudtrail_log_group" {
  type        = string
  description = "The organisation trail's CloudWatch Logs log group, for report_source = logs-insights: its name when it is in this account and region, or its ARN; an ARN in another account is read through the audit role (audit_role_name) deployed there with cloudtrail_log_group_arn set."
  default     = ""

  validation {
    condition     = var.cloudtrail_log_group == "" || can(regex("^[\\w/.#-]{1,512}$", var.cloudtrail_log_group)) || can(regex("^arn:aws[a-z-]*:logs:[a-z0-9-]+:[0-9]{12}:log-group:[\\w/.#-]{1,512}(:\\*)?$", var.cloudtrail_log_group))
    error_message = "cloudtrail_log_group must be a log group name or a log group ARN."
  }
}

locals {
  log_group_is_arn = startswith(var.cloudtrail_log_group, "arn:")
  log_group_parts  = split(":", var.cloudtrail_log_group)
  log_group_region = local.log_group_is_arn ? try(local.log_group_parts[3], "") : local.region
  log_group_name   = local.log_group_is_arn ? try(local.log_group_parts[6], "") : var.cloudtrail_log_group

  # The code reads a log group given by ARN through the audit role when one
  # is set (in the ARN's account), and anything else with its own role.
  logs_via_audit_role = var.report_source == "logs-insights" && local.log_group_is_arn && var.audit_role_name != ""
  logs_directly       = var.report_source == "logs-insights" && !local.logs_via_audit_role
  log_group_account   = local.log_group_is_arn ? try(local.log_group_parts[4], "") : local.account
  log_group_arn       = "arn:${local.partition}:logs:${local.log_group_region}:${local.log_group_account}:log-group:${local.log_group_name}"

  # Accounts whose audit role report-on-access may assume.
  audit_role_accounts = distinct(concat(var.allowed_account_ids, local.logs_via_audit_role ? [local.log_group_account] : []))
}
