output "role_arn" {
  description = "The audit role's ARN."
  value       = aws_iam_role.audit.arn
}
