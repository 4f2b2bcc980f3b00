# The values are set out of band, so they never appear in Terraform state:
#   aws secretsmanager put-secret-value --secret-id <arn> --secret-string '<value>'
resource "aws_secretsmanager_secret" "signing_secret" {
  #checkov:skip=CKV2_AWS_57:Slack signing secrets are rotated in Slack's app settings, then put here by hand; there is no API to rotate them.
  name        = "${var.name}/slack-signing-secret"
  description = "Slack app signing secret, read by access-requested."
  kms_key_id  = aws_kms_key.this.arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret" "bot_token" {
  #checkov:skip=CKV2_AWS_57:Slack bot tokens are rotated in Slack (token rotation or reinstall), then put here by hand.
  name        = "${var.name}/slack-bot-token"
  description = "Slack bot token (chat:write, users:read, users:read.email)."
  kms_key_id  = aws_kms_key.this.arn
  tags        = var.tags
}
