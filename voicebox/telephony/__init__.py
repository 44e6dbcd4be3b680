"""Telephony: the SIP user agent (pjsua2) and the bridge between RTP audio and the pipeline."""
