"""What calls produce for the business: outcomes stored durably, then delivered (webhook,
email, calendar) from an outbox, at least once, acted on once (the outcome id is the key)."""
