output "role_arn" {
  description = "The audit role's ARN."
  value       = aws_iam_role.audit.arn
}

output "session_revocation_policy_arn" {
  description = "The session revocation policy's ARN (attach it to the break-glass permission sets by name)."
  value       = aws_iam_policy.session_revocations.arn
}
