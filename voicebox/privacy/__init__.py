"""Privacy: personal data in call transcripts replaced by typed placeholders."""
