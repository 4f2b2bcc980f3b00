variable "role_name" {
  type        = string
  description = "Name of the role; the main module's audit_role_name."
  default     = "break-glass-audit"

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,64}$", var.role_name))
    error_message = "role_name must be an IAM role name."
  }
}

variable "report_role_arn" {
  type        = string
  description = "report-on-access's role ARN (the main module's report_role_arn output): the only principal trusted."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.report_role_arn))
    error_message = "report_role_arn must be an IAM role ARN."
  }
}

variable "revoke_role_arn" {
  type        = string
  description = "revoke-access's role ARN (the main module's revoke_role_arn output): trusted too, so it can write the session revocation policy. Empty: sessions are not ended in this account."
  default     = ""

  validation {
    condition     = var.revoke_role_arn == "" || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.revoke_role_arn))
    error_message = "revoke_role_arn must be an IAM role ARN."
  }
}

variable "reconcile_role_arn" {
  type        = string
  description = "reconcile-access's role ARN (the main module's reconcile_role_arn output): trusted too, so its sweeps can drop expired Denies from the session revocation policy. Empty: only later revokes drop them."
  default     = ""

  validation {
    condition     = var.reconcile_role_arn == "" || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.reconcile_role_arn))
    error_message = "reconcile_role_arn must be an IAM role ARN."
  }
}

variable "session_revocation_policy_name" {
  type        = string
  description = "Name of the session revocation policy; the main module's session_revocation_policy_name, and the name the break-glass permission sets reference."
  default     = "break-glass-session-revocations"

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,128}$", var.session_revocation_policy_name))
    error_message = "session_revocation_policy_name must be an IAM policy name."
  }
}

variable "checker_role_arns" {
  type        = list(string)
  description = "Roles that may also assume this role, so `break-glass-local doctor` run as them can check it (the role reads CloudTrail and writes only the session revocation policy). Empty: only the report and revoke-access."
  default     = []

  validation {
    condition     = alltrue([for arn in var.checker_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", arn))])
    error_message = "checker_role_arns must be IAM role ARNs."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for the role and the policy."
  default     = {}
}

variable "cloudtrail_log_group_arn" {
  type        = string
  description = "In the account holding the organisation trail's log group: its ARN (the main module's cloudtrail_log_group), to let the report query it with Logs Insights. Empty elsewhere."
  default     = ""

  validation {
    condition     = var.cloudtrail_log_group_arn == "" || can(regex("^arn:aws[a-z-]*:logs:[a-z0-9-]+:[0-9]{12}:log-group:[\\w/.#-]{1,512}(:\\*)?$", var.cloudtrail_log_group_arn))
    error_message = "cloudtrail_log_group_arn must be a log group ARN."
  }
}
