"""Call records: one JSONL event stream per call, kept only as long as retention allows."""
