"""voicebox: a self-hosted, fully offline voice agent that answers SIP phone calls."""

__version__ = "0.1.0"
