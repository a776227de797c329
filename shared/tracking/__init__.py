"""Following a message: signed tokens, tracking URLs, the byte-preserving link rewrite, the
followed body built at compose, recording a hit (one blob per event) and the event codec,
the stored links and attachments a token resolves to, and the organisation's switch. The
hot path: imports only classification and core, and never the Graph SDK."""
