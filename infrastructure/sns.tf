locals {
  # By name, for the key policy (kms.tf): the topic refers to the key.
  alert_topic_name = "${var.name}-alerts"
  alert_topic_arn  = "arn:${local.partition}:sns:${local.region}:${local.account}:${local.alert_topic_name}"
}

resource "aws_sns_topic" "alerts" {
  name              = local.alert_topic_name
  kms_master_key_id = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "alert_email" {
  for_each  = toset(var.alert_email_addresses)
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}
