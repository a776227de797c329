"""Development tools: stand-ins for outside services, used by tests and the local demo."""
