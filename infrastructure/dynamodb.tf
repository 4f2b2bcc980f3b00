# The grant ledger: one item per Identity Center user, account and
# permission set, saying who holds the assignment and why. grant-access and
# revoke-access change it only by conditional writes on its version
# (crates/adapters/src/ledger.rs is the one reader and writer).
resource "aws_dynamodb_table" "ledger" {
  name         = "${var.name}-grant-ledger"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  # It is the record of who may still hold access: never lost to a stray
  # `terraform destroy`, restorable to any second of the last 35 days.
  deletion_protection_enabled = true

  attribute {
    name = "pk"
    type = "S"
  }

  # The sparse index of open items (granting, held, revoking): only they
  # carry `open`, so the index holds nothing else. Sorted by when the
  # latest hold ends, for the reconciler.
  attribute {
    name = "open"
    type = "S"
  }

  attribute {
    name = "holds_until"
    type = "S"
  }

  global_secondary_index {
    name            = "open-items"
    hash_key        = "open"
    range_key       = "holds_until"
    projection_type = "ALL"
  }

  # Only closed items carry `ttl`: kept 90 days for audit, then expired.
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  tags = var.tags
}
