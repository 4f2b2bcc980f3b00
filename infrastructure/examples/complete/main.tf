# The whole product in the Identity Center delegated administrator (or
# management) account, plus the audit role and the session revocation
# policy in one target account.

provider "aws" {
  region = "eu-west-1"
}

provider "aws" {
  alias  = "production"
  region = "eu-west-1"
  assume_role {
    role_arn = "arn:aws:iam::123456789012:role/OrganizationAccountAccessRole"
  }
}

module "break_glass" {
  source = "../.."

  image_uri                   = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/break-glass-access:1.0.0"
  sso_instance_arn            = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
  identity_store_id           = "d-1234567890"
  allowed_account_ids         = ["123456789012"]
  allowed_permission_set_arns = ["arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef"]
  allowed_slack_team_ids      = ["T0123ABCDE"]
  max_duration_minutes        = 240
  audit_role_name             = "break-glass-audit"
  report_sender               = "break-glass@example.com"
  report_recipients           = ["security@example.com"]
  report_cc_requester         = true
  alert_slack_channel         = "C0123ALERTS"
  alert_email_addresses       = ["oncall@example.com"]

  # Identity Center's home region (here the same as the provider's; null
  # would mean that too).
  sso_region = "eu-west-1"
  # Named, so listing it in allowed_account_ids is refused unless
  # allow_management_account = true (and this runs in that account).
  management_account_id = "210987654321"
  # Graviton: the image must be built with --platform linux/arm64.
  architecture = "arm64"

  # Control from Slack: the on-call leads may end or extend anyone's grant;
  # Extend adds half an hour (never past max_duration_minutes from the
  # request); every request carries a reason (the button opens the modal);
  # the modal and App Home show account names.
  admin_slack_user_ids = ["U0123LEAD1", "W0123LEAD2"]
  extend_minutes       = 30
  require_reason       = true
  account_names = {
    "123456789012" = "Production"
  }

  # Who may break into what (policy.tf). The accounts and permission sets
  # the rules name must also be in the allowed_* lists above (the IAM scope).
  policy_rules = [{
    name                 = "oncall-admin"
    accounts             = ["123456789012"]
    permission_sets      = ["BreakGlassAdmin"]
    groups               = ["oncall"]
    users                = ["lead@example.com"]
    max_duration_minutes = 120
    notify_channel       = "C0SECURITY"
  }]

  tags = {
    service = "break-glass-access"
  }
}

module "audit_role_production" {
  source    = "../../modules/target-account"
  providers = { aws = aws.production }

  role_name          = "break-glass-audit"
  report_role_arn    = module.break_glass.report_role_arn
  revoke_role_arn    = module.break_glass.revoke_role_arn
  reconcile_role_arn = module.break_glass.reconcile_role_arn
}

# Once, for each allowed permission set: it references the session
# revocation policy by name, so every account it is provisioned to applies
# it (the policy must exist there first: modules/target-account).
resource "aws_ssoadmin_customer_managed_policy_attachment" "session_revocations" {
  instance_arn       = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
  permission_set_arn = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef"
  customer_managed_policy_reference {
    name = "break-glass-session-revocations"
    path = "/"
  }
  depends_on = [module.audit_role_production]
}

output "slack_interactivity_url" {
  value = module.break_glass.slack_interactivity_url
}

output "slack_commands_url" {
  value = module.break_glass.slack_commands_url
}

output "slack_events_url" {
  value = module.break_glass.slack_events_url
}
